import { useEffect, useState } from 'preact/hooks';
import { ErrorBox, NumCell, Screen, StateBadge, Table } from '../components.tsx';
import { useAction, usePoll } from '../hooks.ts';
import { useI18n } from '../i18n.ts';
import { href } from '../router.ts';
import { useSession } from '../session.ts';
import { useSpeed } from '../speed.ts';
import type { JobView } from '../types.ts';

const POLL_MS = 2000;

/** Older pages loaded with "Older jobs": the jobs shown below the polled page, and the cursor after them. */
interface Older {
  readonly jobs: JobView[];
  readonly next?: string;
}

/**
 * GET /jobs, newest first: its first page polled (state, records done/total, rate and ETA); older pages one at a
 * time on demand ("Older jobs"), not polled. The jobs of the first page as it was when older ones were asked for
 * stay listed, so a job pushed off the first page by new ones never falls between the two.
 */
export function Jobs() {
  const i = useI18n();
  const { t } = i;
  const { api, noteSite } = useSession();
  const page = usePoll((signal) => api.listJobsPage(undefined, signal), POLL_MS, 'jobs');
  const [older, setOlder] = useState<Older | undefined>();
  const { busy: loadingOlder, error: olderError, run } = useAction<'older'>();
  const firstPage = page.data?.jobs;
  const shown = new Set(firstPage?.map((j) => j.token));
  const rows = firstPage
    ? [...firstPage, ...(older?.jobs ?? []).filter((j) => !shown.has(j.token))]
    : undefined;
  const jobs = { ...page, data: rows };
  const next = older ? older.next : page.data?.next;
  const loadOlder = async () => {
    if (!next || !firstPage) return;
    await run('older', async () => {
      const r = await api.listJobsPage(next);
      setOlder({ jobs: [...(older?.jobs ?? firstPage), ...r.jobs], next: r.next });
    });
  };
  const speed = useSpeed();
  const first = jobs.data?.[0];
  useEffect(() => {
    if (first) noteSite(first.site);
  }, [first?.site]);

  return (
    <Screen title={t('jobs.title')}>
      {jobs.error ? <ErrorBox title={t('common.error')} error={jobs.error} /> : null}
      {!jobs.data && !jobs.error ? <p role="status">{t('common.loading')}</p> : null}
      {jobs.data && jobs.data.length === 0 ? <p>{t('jobs.empty')}</p> : null}
      {jobs.data && jobs.data.length > 0 ? (
        <Table
          class="jobs responsive"
          testId="jobs-table"
          headings={['jobs.file', 'jobs.state', 'jobs.records', 'jobs.rate', 'jobs.eta', 'jobs.received']}
          caption={
            <>
              {t('jobs.caption')}{' '}
              {jobs.at ? <span class="muted">{t('jobs.updated', { time: i.time(jobs.at) })}</span> : null}
            </>
          }
        >
          {jobs.data.map((j) => {
            const s = speed(j, jobs.at);
            const total = j.progress.total;
            return (
              <tr key={j.token} data-token={j.token} data-state={j.state}>
                <th scope="row">
                  <a href={href({ name: 'job', token: j.token })}>{j.fileName || t('jobs.unnamed')}</a>
                </th>
                <td data-label={t('jobs.state')}>
                  <StateBadge state={j.state} />
                </td>
                <td data-label={t('jobs.records')} class="num" data-testid="records">
                  {j.state === 'REJECTED'
                    ? t('common.none')
                    : `${i.number(j.progress.done)} / ${total === undefined ? '?' : i.number(total)}`}
                </td>
                <NumCell label={t('jobs.rate')}>
                  {s.rate === undefined ? t('common.none') : t('common.perSecond', { n: i.number(s.rate) })}
                </NumCell>
                <NumCell label={t('jobs.eta')}>
                  {s.etaSeconds === undefined ? t('common.none') : i.duration(s.etaSeconds)}
                </NumCell>
                <td data-label={t('jobs.received')}>{i.dateTime(j.receivedAt)}</td>
              </tr>
            );
          })}
        </Table>
      ) : null}
      {olderError ? <ErrorBox title={t('common.error')} error={olderError} /> : null}
      {jobs.data && next ? (
        <p>
          <button
            type="button"
            disabled={loadingOlder !== undefined}
            onClick={() => void loadOlder()}
            data-testid="jobs-more"
          >
            {loadingOlder ? t('jobs.moreLoading') : t('jobs.more')}
          </button>
        </p>
      ) : null}
    </Screen>
  );
}
