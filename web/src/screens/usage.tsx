import { useState } from 'preact/hooks';
import { ErrorBox, Facts, Screen, Table } from '../components.tsx';
import { usePoll } from '../hooks.ts';
import { useI18n } from '../i18n.ts';
import { useSession } from '../session.ts';
import type { UsageFigures } from '../types.ts';

/** YYYY-MM-DD of a date in the browser's time zone. */
function isoDay(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** GET /usage?from=&to=: per day and office, the period's totals, and the next usage mail. */
export function Usage() {
  const i = useI18n();
  const { t } = i;
  const { api } = useSession();
  const today = new Date();
  const [from, setFrom] = useState(isoDay(new Date(today.getFullYear(), today.getMonth(), 1)));
  const [to, setTo] = useState(isoDay(today));
  const [asked, setAsked] = useState({ from, to });
  const badRange = from > to;
  const usage = usePoll(
    (signal) => api.getUsage(asked.from, asked.to, signal),
    0,
    `${asked.from}:${asked.to}`,
    () => false,
  );

  const cells = (f: UsageFigures) => (
    <>
      <td class="num">{i.number(f.jobs)}</td>
      <td class="num">{i.number(f.rows)}</td>
      <td class="num">{i.number(f.failedRows)}</td>
      <td class="num">{i.number(f.rejectedJobs)}</td>
    </>
  );
  const data = usage.data;
  return (
    <Screen title={t('usage.title')}>
      <form
        class="card form inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!badRange) setAsked({ from, to });
        }}
        noValidate
      >
        <div class="field">
          <label for="usage-from">{t('usage.from')}</label>
          <input id="usage-from" type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="usage-to">{t('usage.to')}</label>
          <input id="usage-to" type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </div>
        <button type="submit" class="primary" disabled={badRange}>
          {t('usage.show')}
        </button>
        {badRange ? (
          <p class="field-error" role="alert">
            {t('usage.badRange')}
          </p>
        ) : null}
      </form>
      {usage.error ? <ErrorBox title={t('usage.unavailable')} error={usage.error} /> : null}
      {!data && !usage.error ? <p role="status">{t('common.loading')}</p> : null}
      {data ? (
        <>
          <Table
            class="usage"
            testId="usage-table"
            wrapClass="table-wrap card"
            headings={[
              'usage.day',
              'usage.office',
              'usage.jobs',
              'usage.rows',
              'usage.failedRows',
              'usage.rejectedJobs',
            ]}
            caption={t('usage.caption', { from: data.from, to: data.to, zone: data.site.timeZone })}
            foot={
              <>
                {data.total.offices.map((o) => (
                  <tr key={`total:${o.id}`}>
                    <th scope="row">{t('usage.periodTotal')}</th>
                    <td>{o.name}</td>
                    {cells(o.figures)}
                  </tr>
                ))}
                <tr class="grand-total" data-testid="usage-total">
                  <th scope="row">{t('usage.periodTotal')}</th>
                  <td>{t('usage.total')}</td>
                  {cells(data.total.total)}
                </tr>
              </>
            }
          >
            {data.days
              .filter((d) => d.total.jobs > 0)
              .flatMap((d) =>
                d.offices
                  .filter((o) => o.figures.jobs > 0)
                  .map((o) => (
                    <tr key={`${d.day}:${o.id}`} data-day={d.day} data-office={o.id}>
                      <th scope="row">{d.day}</th>
                      <td>{o.name}</td>
                      {cells(o.figures)}
                    </tr>
                  )),
              )}
          </Table>
          <section class="card" aria-labelledby="mail-title">
            <h2 id="mail-title">{t('usage.nextMail')}</h2>
            <p>{t('usage.mailDay', { day: data.nextMail.day, sendAt: i.dateTime(data.nextMail.sendAt) })}</p>
            <Facts
              items={[
                [t('usage.mailTo'), data.nextMail.to.join(', ')],
                [t('usage.mailSubject'), <span data-testid="mail-subject">{data.nextMail.subject}</span>],
              ]}
            />
            <pre class="mail" lang="ja" tabIndex={0} data-testid="mail-text">
              {data.nextMail.text}
            </pre>
          </section>
        </>
      ) : null}
    </Screen>
  );
}
