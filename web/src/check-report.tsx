import { ApiError } from './client.ts';
import { CodeCell, ErrorBox, Facts, NumCell, Table } from './components.tsx';
import { CheckEstimateView, CheckSamples } from './check-samples.tsx';
import type { CheckState } from './check.ts';
import { useI18n } from './i18n.ts';
import { settings } from './settings.ts';
import type { CheckResult } from './types.ts';

/**
 * The check's answer: a one-line verdict (announced), what the header lacks (prominent), the file's facts, the first
 * rejected records, three rendered samples and the estimate. `stale`: the file or the options changed since.
 */
export function CheckReport({ state, stale }: { state: CheckState; stale: boolean }) {
  const i = useI18n();
  const { t } = i;
  const verdict =
    state.kind === 'checking'
      ? t('check.checking')
      : state.kind === 'done'
        ? state.result.ok
          ? t('check.ok', { records: i.number(state.result.records), valid: i.number(state.result.valid) })
          : t('check.notOk')
        : state.kind === 'failed'
          ? tooLarge(state.error)
            ? t('check.tooLarge', { limit: i.bytes(settings.directUploadMaxBytes) })
            : t('check.failed')
          : '';
  // The verdict's live region is always in the page, so that a screen reader announces each new verdict.
  return (
    <>
      <p
        role="status"
        aria-live="polite"
        data-testid="check-verdict"
        data-ok={state.kind === 'done' ? String(state.result.ok) : undefined}
        class={state.kind === 'done' && !state.result.ok ? 'verdict verdict-bad' : 'verdict'}
      >
        {verdict}
      </p>
      {state.kind !== 'idle' && state.kind !== 'checking' ? (
        <section class="card check" aria-labelledby="check-title" data-testid="check">
          <h2 id="check-title">{t('check.title')}</h2>
          {stale ? (
            <p class="help" data-testid="check-stale">
              {t('check.stale')}
            </p>
          ) : null}
          {state.kind === 'failed' && !tooLarge(state.error) ? (
            <ErrorBox
              title={
                state.error instanceof ApiError && state.error.status === 422
                  ? t('upload.rejected')
                  : t('check.failed')
              }
              error={state.error}
            />
          ) : null}
          {state.kind === 'done' ? <CheckBody r={state.result} /> : null}
        </section>
      ) : null}
    </>
  );
}

/** The code of a header that lacks what the processor needs (core's, as the API names it). */
const FIELDS_MISSING = 'PROCESSOR_FIELDS_MISSING';

const tooLarge = (e: Error) => e instanceof ApiError && e.status === 413;

function CheckBody({ r }: { r: CheckResult }) {
  const i = useI18n();
  const { t } = i;
  return (
    <>
      <Problems r={r} />
      <Facts
        items={[
          [t('check.encoding'), <span data-testid="check-encoding">{r.encoding ?? '—'}</span>],
          [t('check.records'), <span data-testid="check-records">{i.number(r.records)}</span>],
          [t('check.valid'), <span data-testid="check-valid">{i.number(r.valid)}</span>],
          [t('check.rejected'), <span data-testid="check-rejected">{i.number(r.rejected.count)}</span>],
          [
            t('check.needs'),
            r.needs.columns.length ? <ColumnList columns={r.needs.columns} /> : t('common.none'),
          ],
        ]}
      />
      {r.rejected.first.length > 0 ? <RejectedTable r={r} /> : null}
      <CheckSamples samples={r.samples} />
      <CheckEstimateView e={r.estimate} />
    </>
  );
}

/** What stops the run: the columns the processor needs and the header lacks first, then any other problem. */
function Problems({ r }: { r: CheckResult }) {
  const { t } = useI18n();
  const fields = r.problems.find((p) => p.code === FIELDS_MISSING);
  // The columns as `needs` names them, or as the problem does.
  const missing = r.needs.missing.length ? r.needs.missing : (fields?.columns ?? []);
  const others = r.problems.filter((p) => !(missing.length && p.code === FIELDS_MISSING));
  if (!missing.length && !others.length) return null;
  return (
    <div class="alert" data-testid="check-problems">
      {missing.length ? (
        <>
          <p class="alert-title">{t('check.missing', { n: missing.length })}</p>
          <ColumnList columns={missing} testId="check-missing" />
          <p>{t('check.missingHelp')}</p>
        </>
      ) : null}
      {others.map((p) => (
        <div key={p.code + p.message} class="problem">
          <p>
            <code data-testid="problem-code">{p.code}</code>
            {p.line !== undefined ? <> · {t('upload.line', { line: p.line })}</> : null} {p.message}
          </p>
          {p.columns?.length ? <ColumnList columns={p.columns} /> : null}
        </div>
      ))}
    </div>
  );
}

function ColumnList({ columns, testId }: { columns: readonly string[]; testId?: string }) {
  return (
    <ul class="columns" data-testid={testId}>
      {columns.map((c) => (
        <li key={c}>
          <code>{c}</code>
        </li>
      ))}
    </ul>
  );
}

function RejectedTable({ r }: { r: CheckResult }) {
  const i = useI18n();
  const { t } = i;
  return (
    <Table
      class="errors responsive"
      testId="check-rejected-table"
      headings={['errors.record', 'errors.line', 'errors.code', 'errors.message']}
      caption={t('check.rejectedCaption', {
        shown: i.number(r.rejected.first.length),
        count: i.number(r.rejected.count),
      })}
    >
      {r.rejected.first.map((x) => (
        <tr key={x.record}>
          <NumCell label={t('errors.record')}>{x.record}</NumCell>
          <NumCell label={t('errors.line')}>{x.line}</NumCell>
          <CodeCell label={t('errors.code')}>{x.code}</CodeCell>
          <td data-label={t('errors.message')}>{x.message}</td>
        </tr>
      ))}
    </Table>
  );
}
