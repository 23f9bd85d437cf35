import { useState } from 'preact/hooks';
import { ApiError } from './client.ts';
import { CodeCell, ErrorBox, Field, FileInput, NumCell, Table } from './components.tsx';
import { useAction } from './hooks.ts';
import { useI18n } from './i18n.ts';
import { useSession } from './session.ts';
import { isFinished, type JobView, type ResubmitResult } from './types.ts';

/**
 * A finished job's sheet back and the way to fix it: "Download results (Excel)" (results.csv: every record with its
 * outcome) and "Upload corrections" (that file edited, POST /jobs/{token}/resubmit: the job's next attempt runs the
 * records that have not succeeded, with their corrected values).
 */
export function Corrections({ view, onChanged }: { view: JobView; onChanged: () => void }) {
  const { t } = useI18n();
  // Kept here, not in the form: the answer stays while the attempt it started runs and after it ends.
  const [answer, setAnswer] = useState<ResubmitResult>();
  if (view.state === 'REJECTED' || view.state === 'EXPIRED') return null;
  const done = isFinished(view.state);
  if (!done && !answer) return null;
  const open = view.rows.total - view.rows.succeeded;
  return (
    <section class="card" aria-labelledby="results-title" data-testid="corrections">
      <h2 id="results-title">{t('results.title')}</h2>
      <p class="help">{t('results.intro')}</p>
      {done ? <ResultsDownload token={view.token} /> : null}
      {done && open > 0 ? (
        <CorrectionsUpload
          token={view.token}
          onAccepted={(r) => {
            setAnswer(r);
            onChanged();
          }}
        />
      ) : null}
      <div role="status" data-testid="resubmit-outcome">
        {answer ? <ResubmitAnswer r={answer} /> : null}
      </div>
    </section>
  );
}

function ResultsDownload({ token }: { token: string }) {
  const { t } = useI18n();
  const { api } = useSession();
  const { busy, error, run } = useAction<'download'>();
  const download = () =>
    run('download', async () => {
      const link = await api.resultsLink(token);
      // A navigation, not a fetch: the presigned link's answer names the file, and connect-src does not govern it.
      const a = document.createElement('a');
      a.href = link.url;
      a.download = link.fileName;
      a.click();
    });
  return (
    <div class="field">
      <button
        type="button"
        class="primary"
        disabled={busy !== undefined}
        onClick={download}
        data-testid="download-results"
      >
        {t('results.download')}
      </button>
      {error ? <ErrorBox title={t('results.downloadFailed')} error={error} /> : null}
    </div>
  );
}

function CorrectionsUpload({
  token,
  onAccepted,
}: {
  token: string;
  onAccepted: (r: ResubmitResult) => void;
}) {
  const { t } = useI18n();
  const { api } = useSession();
  const [file, setFile] = useState<File>();
  const { busy, error, run } = useAction<'send'>();
  const send = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    await run('send', async () => onAccepted(await api.resubmit(token, file)));
  };
  return (
    <form class="form corrections" onSubmit={send} noValidate>
      <Field
        id="corrections-file"
        label={t('results.correctionsFile')}
        help={t('results.correctionsHelp')}
        helpId="corrections-help"
      >
        <FileInput
          id="corrections-file"
          accept=".csv,text/csv"
          describedBy="corrections-help"
          onFile={setFile}
        />
      </Field>
      <button type="submit" disabled={!file || busy !== undefined} data-testid="resubmit">
        {busy ? t('results.sending') : t('results.upload')}
      </button>
      {error ? <ResubmitError error={error} /> : null}
    </form>
  );
}

/** What the attempt runs, and the records it does not run again with the reason. */
function ResubmitAnswer({ r }: { r: ResubmitResult }) {
  const i = useI18n();
  const { t } = i;
  return (
    <div data-testid="resubmit-answer">
      <p data-testid="resubmit-started">
        {t('results.started', { attempt: r.attempt, run: i.number(r.run), notRun: i.number(r.notRunCount) })}
      </p>
      {r.notRun.length > 0 ? (
        <Table
          class="responsive"
          testId="not-run-table"
          headings={['errors.record', 'results.status', 'results.reason']}
          caption={t('results.notRunCaption', {
            shown: i.number(r.notRun.length),
            count: i.number(r.notRunCount),
          })}
        >
          {r.notRun.map((n) => (
            <tr key={n.record}>
              <NumCell label={t('errors.record')}>{n.record}</NumCell>
              <CodeCell label={t('results.status')}>{n.status}</CodeCell>
              <td data-label={t('results.reason')}>{n.reason}</td>
            </tr>
          ))}
        </Table>
      ) : null}
    </div>
  );
}

/** A refused resubmit: what the code means in the user's words, the API's message, and what it named. */
function ResubmitError({ error }: { error: Error }) {
  const { t } = useI18n();
  const api = error instanceof ApiError ? error : undefined;
  const hint =
    api?.code === 'RESUBMIT_HEADER_CHANGED'
      ? t('results.headerChanged')
      : api?.code === 'RESUBMIT_UNKNOWN_RECORDS'
        ? t('results.unknownRecords')
        : api?.status === 409
          ? t('results.busy')
          : undefined;
  const named = Object.entries(api?.details ?? {}).filter(
    ([, v]) => Array.isArray(v) || typeof v === 'string' || typeof v === 'number',
  );
  return (
    <div data-testid="resubmit-error">
      <ErrorBox title={t('results.refused')} error={error} />
      {hint ? <p data-testid="resubmit-hint">{hint}</p> : null}
      {named.length ? (
        <dl class="facts" data-testid="resubmit-details">
          {named.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{Array.isArray(v) ? v.map(String).join(', ') : String(v)}</dd>
            </div>
          ))}
        </dl>
      ) : null}
    </div>
  );
}
