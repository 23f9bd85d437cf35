import { Facts, NumCell, Table } from './components.tsx';
import { useI18n } from './i18n.ts';
import { PreviewFrame } from './preview-frame.tsx';
import type { CheckEstimate, CheckSample } from './types.ts';

/** How much of an entry's text the preview shows (a report page can be long). */
const PREVIEW_CHARS = 2000;

/** The first records' outputs, rendered as the run would make them and sent nowhere. */
export function CheckSamples({ samples }: { samples: readonly CheckSample[] }) {
  const { t } = useI18n();
  if (!samples.length) return null;
  return (
    <section aria-labelledby="samples-title" class="samples">
      <h3 id="samples-title">{t('check.samples', { n: samples.length })}</h3>
      {samples.map((s) => (
        <article
          key={s.record}
          class="sample"
          aria-labelledby={`sample-${s.record}`}
          data-testid="check-sample"
          data-kind={s.output.kind}
        >
          <h4 id={`sample-${s.record}`}>{t('check.sample', { record: s.record, line: s.line })}</h4>
          <SampleOutput s={s} />
        </article>
      ))}
    </section>
  );
}

function SampleOutput({ s }: { s: CheckSample }) {
  const { t } = useI18n();
  const o = s.output;
  if (o.kind === 'none') return <p class="muted">{t('check.sampleNone', { reason: o.reason })}</p>;
  if (o.kind === 'error')
    return (
      <p class="field-error" data-testid="sample-error">
        {t('check.sampleError', { code: o.code, message: o.message })}
      </p>
    );
  if (o.kind === 'entries') {
    return (
      <>
        {o.entries.map((e) => (
          <div key={e.name} class="sample-entry">
            <p>
              <code data-testid="sample-entry-name">{e.name}</code> <span class="muted">{e.contentType}</span>
            </p>
            <pre class="raw preview-text" tabIndex={0} aria-label={t('check.entryText', { name: e.name })}>
              {e.text.length > PREVIEW_CHARS ? `${e.text.slice(0, PREVIEW_CHARS)}…` : e.text}
            </pre>
          </div>
        ))}
      </>
    );
  }
  return (
    <>
      <Facts
        items={[
          [t('check.mailFrom'), <span data-testid="sample-from">{o.from}</span>],
          [t('check.mailTo'), <span data-testid="sample-to">{o.to}</span>],
          [t('check.mailSubject'), <span data-testid="sample-subject">{o.subject}</span>],
        ]}
      />
      <pre
        class="raw preview-text"
        tabIndex={0}
        aria-label={t('check.mailText', { record: s.record })}
        data-testid="sample-text"
      >
        {o.text}
      </pre>
      {o.html !== undefined ? (
        <PreviewFrame html={o.html} title={t('check.mailHtml', { record: s.record })} testId="sample-html" />
      ) : null}
    </>
  );
}

/** Workers, time and cost of the run at list prices, in USD and JPY, with what each service adds. */
export function CheckEstimateView({ e }: { e: CheckEstimate }) {
  const i = useI18n();
  const { t } = i;
  const usd = (n: number) => `US$${i.number(n, n < 1 ? 4 : 2)}`;
  return (
    <section aria-labelledby="estimate-title" class="estimate" data-testid="check-estimate">
      <h3 id="estimate-title">{t('check.estimate')}</h3>
      <Facts
        items={[
          [
            t('check.workers'),
            <span data-testid="estimate-workers">
              {t('check.workersValue', { n: i.number(e.workers), now: i.number(e.workersNow) })}
            </span>,
          ],
          [t('check.time'), <span data-testid="estimate-time">{i.duration(e.seconds)}</span>],
          [
            t('check.cost'),
            <span data-testid="estimate-cost">
              {usd(e.usd)} · ¥{i.number(e.jpy, e.jpy < 10 ? 2 : 0)}
            </span>,
          ],
        ]}
      />
      <Table
        class="responsive"
        testId="estimate-breakdown"
        headings={['check.service', 'check.usd', 'check.basis']}
        caption={t('check.breakdownCaption', {
          region: e.region,
          asOf: e.pricesAsOf,
          rate: i.number(e.jpyPerUsd, 2),
        })}
      >
        {e.breakdown.map((b) => (
          <tr key={b.service}>
            <td data-label={t('check.service')}>{b.service}</td>
            <NumCell label={t('check.usd')}>{usd(b.usd)}</NumCell>
            <td data-label={t('check.basis')}>{b.basis}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
