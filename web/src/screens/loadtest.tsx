import { useState } from 'preact/hooks';
import { ErrorBox, NumberField, Screen, StateBadge } from '../components.tsx';
import { usePoll } from '../hooks.ts';
import { useI18n } from '../i18n.ts';
import { href } from '../router.ts';
import { sampleCsvParts } from '../sample-data.ts';
import { useSession } from '../session.ts';
import { useSpeed } from '../speed.ts';
import { isFinished } from '../types.ts';
import { useUploader, UploadStatus } from '../uploader.tsx';

export const LOADTEST_SIZES = [1_000, 5_000, 10_000, 100_000] as const;
/** The share of records whose first attempt fails when the error switch is on. */
const ERROR_RATE = 0.1;

/** Generates sample records in the browser and uploads them like any file (processor json), then watches. */
export function LoadTest() {
  const i = useI18n();
  const { t } = i;
  const [delay, setDelay] = useState('0');
  const [errors, setErrors] = useState(false);
  const [generating, setGenerating] = useState<number>();
  const [token, setToken] = useState<string>();
  const uploader = useUploader();

  const run = async (records: number) => {
    setToken(undefined);
    setGenerating(records);
    // Let the "generating" status paint before the (synchronous) generation.
    await new Promise((r) => setTimeout(r, 0));
    const file = new Blob(sampleCsvParts(records), { type: 'text/csv' });
    setGenerating(undefined);
    const delayMs = Number(delay) || 0;
    const started = await uploader.start(file, `loadtest-${records}.csv`, {
      processor: 'json',
      simulateDelayMs: delayMs > 0 ? delayMs : undefined,
      simulateErrorRate: errors ? ERROR_RATE : undefined,
    });
    if (started) setToken(started);
  };

  const busy = generating !== undefined || uploader.state.kind === 'sending';
  return (
    <Screen title={t('loadtest.title')}>
      <p>{t('loadtest.intro')}</p>
      <div class="card form">
        <NumberField
          id="lt-delay"
          label={t('loadtest.delay')}
          min={0}
          max={60000}
          step={1}
          value={delay}
          onValue={setDelay}
        />
        <div class="field switch-field">
          <input
            id="lt-errors"
            type="checkbox"
            role="switch"
            aria-describedby="lt-errors-help"
            checked={errors}
            onChange={(e) => setErrors(e.currentTarget.checked)}
          />
          <label for="lt-errors">{t('loadtest.errors')}</label>
          <p id="lt-errors-help" class="help">
            {t('loadtest.errorsHelp')}
          </p>
        </div>
        <fieldset class="sizes">
          <legend>{t('loadtest.choose')}</legend>
          {LOADTEST_SIZES.map((n) => (
            <button key={n} type="button" class="primary" disabled={busy} onClick={() => void run(n)}>
              {t('loadtest.records', { n: i.number(n) })}
            </button>
          ))}
        </fieldset>
      </div>
      {generating !== undefined ? (
        <p role="status">{t('loadtest.generating', { n: i.number(generating) })}</p>
      ) : null}
      {uploader.state.kind !== 'started' ? (
        <UploadStatus state={uploader.state} onStop={uploader.stop} />
      ) : null}
      {token ? <RunningJob token={token} /> : null}
    </Screen>
  );
}

function RunningJob({ token }: { token: string }) {
  const i = useI18n();
  const { t } = i;
  const { api } = useSession();
  const speed = useSpeed();
  const job = usePoll(
    (s) => api.getJob(token, s),
    1000,
    token,
    (j) => !j || !isFinished(j.state),
  );
  const view = job.data;
  const est = view ? speed(view, job.at) : {};
  const total = view?.progress.total;
  return (
    <section class="card" aria-labelledby="lt-job-title" data-testid="loadtest-job">
      <h2 id="lt-job-title">{t('loadtest.running')}</h2>
      {job.error ? <ErrorBox title={t('common.error')} error={job.error} /> : null}
      {view ? (
        <>
          <p aria-live="polite" data-testid="job-state" data-state={view.state}>
            <StateBadge state={view.state} />{' '}
            <span data-testid="progress-text">
              {total === undefined
                ? t('detail.progressUnknown', { done: i.number(view.progress.done) })
                : t('detail.progressText', { done: i.number(view.progress.done), total: i.number(total) })}
            </span>
          </p>
          <progress
            max={total ?? 1}
            value={total === undefined ? undefined : view.progress.done}
            aria-label={t('detail.progress')}
          />
          <p class="muted">
            {t('detail.rate')}:{' '}
            {est.rate === undefined ? t('common.none') : t('common.perSecond', { n: i.number(est.rate) })} ·{' '}
            {t('detail.eta')}:{' '}
            {isFinished(view.state) || est.etaSeconds === undefined
              ? t('common.none')
              : i.duration(est.etaSeconds)}
          </p>
        </>
      ) : (
        <p role="status">{t('common.loading')}</p>
      )}
      <p>
        <a href={href({ name: 'job', token })}>{t('loadtest.open')}</a>
      </p>
    </section>
  );
}
