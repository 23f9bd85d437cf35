import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../client.ts';
import { CodeCell, ErrorBox, Facts, NumCell, Screen, StateBadge, Table } from '../components.tsx';
import { Corrections } from '../corrections.tsx';
import { useAction, usePoll } from '../hooks.ts';
import { useI18n } from '../i18n.ts';
import { href } from '../router.ts';
import { useSession } from '../session.ts';
import { useSpeed } from '../speed.ts';
import { isFinished, type JobView } from '../types.ts';
import { JobTimeline } from '../timeline.tsx';

const POLL_MS = 1000;
const ERRORS_PAGE = 20;

/**
 * A job: progress, counts by outcome, timings, the file's error, download, cancel, retry, its results.csv and the
 * corrections of it, attempts, first errors.
 */
export function Job({ token }: { token: string }) {
  const i = useI18n();
  const { t } = i;
  const { api, noteSite } = useSession();
  const job = usePoll(
    (signal) => api.getJob(token, signal),
    POLL_MS,
    token,
    (j) => !j || !isFinished(j.state),
  );
  const speed = useSpeed();
  const view = job.data;
  useEffect(() => {
    if (view) noteSite(view.site);
  }, [view?.site]);

  const notFound = job.error instanceof ApiError && job.error.status === 404 && !view;
  return (
    <Screen title={view?.fileName ? `${t('detail.title')}: ${view.fileName}` : t('detail.title')}>
      <p>
        <a href={href({ name: 'jobs' })}>← {t('detail.back')}</a>
      </p>
      {notFound ? <p role="alert">{t('detail.notFound')}</p> : null}
      {job.error && !notFound ? <ErrorBox title={t('common.error')} error={job.error} /> : null}
      {!view && !job.error ? <p role="status">{t('common.loading')}</p> : null}
      {view ? <JobBody view={view} est={speed(view, job.at)} onChanged={job.reload} /> : null}
    </Screen>
  );
}

function JobBody({
  view,
  est,
  onChanged,
}: {
  view: JobView;
  est: { rate?: number; etaSeconds?: number };
  onChanged: () => void;
}) {
  const i = useI18n();
  const { t } = i;
  const done = isFinished(view.state);
  const total = view.progress.total;
  const elapsed =
    ((view.finishedAt ? Date.parse(view.finishedAt) : Date.now()) - Date.parse(view.receivedAt)) / 1000;
  const problems = view.rows.failed + view.rows.rejected;
  return (
    <>
      <div class="card status-card">
        <p class="job-state" aria-live="polite" data-testid="job-state" data-state={view.state}>
          <StateBadge state={view.state} />
        </p>
        {view.state !== 'REJECTED' ? (
          <div class="field">
            <label for="job-progress">{t('detail.progress')}</label>
            <progress
              id="job-progress"
              max={total ?? 1}
              value={total === undefined ? undefined : view.progress.done}
            />
            <p class="muted" data-testid="progress-text">
              {total === undefined
                ? t('detail.progressUnknown', { done: i.number(view.progress.done) })
                : t('detail.progressText', { done: i.number(view.progress.done), total: i.number(total) })}
            </p>
          </div>
        ) : null}
        {view.error ? (
          <ErrorBox
            title={view.state === 'REJECTED' ? t('detail.fileError') : t('common.error')}
            error={new ApiError(422, view.error.code, view.error.message, view.error.line)}
          />
        ) : null}
        <Actions view={view} onChanged={onChanged} />
      </div>
      <Corrections view={view} onChanged={onChanged} />

      <div class="grid">
        <section class="card" aria-labelledby="counts-title">
          <h2 id="counts-title">{t('detail.counts')}</h2>
          <Facts
            items={[
              [t('detail.total'), <span data-testid="count-total">{i.number(view.rows.total)}</span>],
              [
                t('detail.succeeded'),
                <span data-testid="count-succeeded">{i.number(view.rows.succeeded)}</span>,
              ],
              [t('detail.failed'), <span data-testid="count-failed">{i.number(view.rows.failed)}</span>],
              [
                t('detail.rejectedRows'),
                <span data-testid="count-rejected">{i.number(view.rows.rejected)}</span>,
              ],
            ]}
          />
        </section>
        <section class="card" aria-labelledby="timings-title">
          <h2 id="timings-title">{t('detail.timings')}</h2>
          <Facts
            items={[
              [t('detail.receivedAt'), i.dateTime(view.receivedAt)],
              [t('detail.finishedAt'), view.finishedAt ? i.dateTime(view.finishedAt) : t('common.none')],
              [t('detail.elapsed'), i.duration(Math.max(0, elapsed))],
              [
                t('detail.rate'),
                est.rate === undefined ? t('common.none') : t('common.perSecond', { n: i.number(est.rate) }),
              ],
              [
                t('detail.eta'),
                done || est.etaSeconds === undefined ? t('common.none') : i.duration(est.etaSeconds),
              ],
            ]}
          />
        </section>
        <section class="card" aria-labelledby="about-title">
          <h2 id="about-title">{t('detail.title')}</h2>
          <Facts
            items={[
              [t('detail.token'), <code>{view.token}</code>],
              [t('detail.file'), view.fileName ?? t('common.none')],
              [t('detail.processor'), view.processor],
              [t('detail.office'), view.office ?? t('common.none')],
              [t('detail.encoding'), view.encoding ?? t('common.none')],
              ...(view.retryOf
                ? [
                    [
                      t('detail.retryOf'),
                      <a href={href({ name: 'job', token: view.retryOf })} data-testid="retry-of">
                        <code>{view.retryOf}</code>
                      </a>,
                    ] as const,
                  ]
                : []),
            ]}
          />
        </section>
      </div>
      {(view.attempts?.length ?? 0) > 1 ? <Attempts view={view} /> : null}
      <JobTimeline token={view.token} live={!done} />
      {done && problems > 0 ? <ErrorRows token={view.token} /> : null}
    </>
  );
}

/** The job's attempts (its first run, then one per retry): state, records run, and how they ended. */
function Attempts({ view }: { view: JobView }) {
  const i = useI18n();
  const { t } = i;
  const n = (x: number | undefined) => (x === undefined ? t('common.none') : i.number(x));
  return (
    <section class="card" aria-labelledby="attempts-title">
      <h2 id="attempts-title">{t('detail.attempts')}</h2>
      <Table
        class="responsive"
        testId="attempts-table"
        headings={[
          'detail.attempt',
          'jobs.state',
          'detail.attemptRecords',
          'detail.succeeded',
          'detail.failed',
          'detail.attemptStarted',
          'detail.attemptEnded',
        ]}
      >
        {(view.attempts ?? []).map((a) => (
          <tr key={a.n} data-testid={`attempt-${a.n}`}>
            <NumCell label={t('detail.attempt')}>{a.n}</NumCell>
            <td data-label={t('jobs.state')}>
              <StateBadge state={a.state} />
            </td>
            <NumCell label={t('detail.attemptRecords')}>{i.number(a.records)}</NumCell>
            <NumCell label={t('detail.succeeded')}>{n(a.succeeded)}</NumCell>
            <NumCell label={t('detail.failed')}>{n(a.failed)}</NumCell>
            <td data-label={t('detail.attemptStarted')}>{i.dateTime(a.startedAt)}</td>
            <td data-label={t('detail.attemptEnded')}>
              {a.endedAt ? i.dateTime(a.endedAt) : t('common.none')}
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

/**
 * Download, cancel (while it runs: DELETE /jobs/{token}), retry (POST /jobs/{token}/retry: the job's next attempt,
 * offered only when a retry has records to run and no attempt is under way).
 */
function Actions({ view, onChanged }: { view: JobView; onChanged: () => void }) {
  const i = useI18n();
  const { t } = i;
  const { api } = useSession();
  const [confirming, setConfirming] = useState(false);
  const { busy, error, run } = useAction<'cancel' | 'retry'>();
  const done = isFinished(view.state);

  const cancel = () =>
    run('cancel', async () => {
      await api.cancelJob(view.token);
      setConfirming(false);
      onChanged();
    });
  const retry = () =>
    run('retry', async () => {
      // The same job: its next attempt shows here.
      await api.retryJob(view.token);
      onChanged();
    });

  return (
    <div class="actions">
      {view.download ? (
        <p>
          <a class="button primary" href={view.download.url} data-testid="download">
            {t('detail.download')}
          </a>{' '}
          <span class="muted">
            {t('detail.downloadSize', {
              size: view.download.bytes === undefined ? '?' : i.bytes(view.download.bytes),
              minutes: Math.round(view.download.expiresInSeconds / 60),
            })}
          </span>
        </p>
      ) : null}
      {!done && !confirming ? (
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          {t('detail.cancel')}
        </button>
      ) : null}
      {!done && confirming ? (
        <div class="confirm" role="group" aria-labelledby="cancel-q">
          <p id="cancel-q">{t('detail.cancelConfirm')}</p>
          <button type="button" class="danger" disabled={busy === 'cancel'} onClick={cancel}>
            {busy === 'cancel' ? t('detail.cancelling') : t('detail.cancelYes')}
          </button>{' '}
          <button type="button" onClick={() => setConfirming(false)}>
            {t('detail.cancelNo')}
          </button>
        </div>
      ) : null}
      {done && (view.retryable ?? 0) > 0 ? (
        <button type="button" disabled={busy === 'retry'} onClick={retry} data-testid="retry">
          {busy === 'retry' ? t('detail.retrying') : t('detail.retry', { n: i.number(view.retryable ?? 0) })}
        </button>
      ) : null}
      {error ? <ErrorBox title={t('detail.actionFailed')} error={error} /> : null}
    </div>
  );
}

/** GET /jobs/{token}/errors?limit=&offset=: the rows of errors.csv, a page at a time. */
function ErrorRows({ token }: { token: string }) {
  const i = useI18n();
  const { t } = i;
  const { api } = useSession();
  const [offset, setOffset] = useState(0);
  const page = usePoll(
    (signal) => api.getErrors(token, offset, ERRORS_PAGE, signal),
    POLL_MS,
    `${token}:${offset}`,
    () => false,
  );
  const rows = page.data?.errors ?? [];
  const totalRows = page.data?.total ?? 0;
  return (
    <section class="card" aria-labelledby="errors-title">
      <h2 id="errors-title">{t('detail.errors')}</h2>
      {page.error ? <ErrorBox title={t('detail.errorsUnavailable')} error={page.error} /> : null}
      {!page.data && !page.error ? <p role="status">{t('common.loading')}</p> : null}
      {page.data && rows.length === 0 ? <p>{t('detail.errorsNone')}</p> : null}
      {rows.length > 0 ? (
        <Table
          class="errors responsive"
          testId="errors-table"
          headings={['errors.line', 'errors.record', 'errors.code', 'errors.message', 'errors.raw']}
          caption={t('detail.errorsRange', {
            from: i.number(offset + 1),
            to: i.number(offset + rows.length),
            total: i.number(totalRows),
          })}
        >
          {rows.map((r) => (
            <tr key={`${r.record}:${r.line}`}>
              <NumCell label={t('errors.line')}>{r.line}</NumCell>
              <NumCell label={t('errors.record')}>{r.record}</NumCell>
              <CodeCell label={t('errors.code')}>{r.code}</CodeCell>
              <td data-label={t('errors.message')}>{r.message}</td>
              <td data-label={t('errors.raw')}>
                <code class="raw">{r.raw}</code>
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      {totalRows > ERRORS_PAGE ? (
        <div class="pager">
          <button
            type="button"
            disabled={offset === 0}
            onClick={() => setOffset(Math.max(0, offset - ERRORS_PAGE))}
          >
            {t('detail.prev')}
          </button>
          <button
            type="button"
            disabled={offset + ERRORS_PAGE >= totalRows}
            onClick={() => setOffset(offset + ERRORS_PAGE)}
          >
            {t('detail.next')}
          </button>
        </div>
      ) : null}
    </section>
  );
}
