import { randomUUID } from 'node:crypto';
import { BadRequestError } from '../shared/errors.ts';
import { getJobView } from './operations.ts';
import { keys } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { isTerminal } from '../jobs/states.ts';
import { asRanges, type ChunkMessage } from '../messages/chunk.ts';
import type { ErrorRow, RecordFailure } from '../messages/part.ts';
import { currentAttempt, RETRYABLE_FROM } from '../jobs/attempts.ts';
import type { Job } from '../jobs/store.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { readRange, scanRecordBatches, type BoundaryEvent } from '../source/scan.ts';
import { recordErrors } from '../source/csv.ts';
import { csvRecord, unguardCell } from '../source/write.ts';
import { rawFields, RESULT_COLUMNS, statusOf } from '../finalize/results-sheet.ts';
import { processorInfo } from '../processors/index.ts';
import { chunkLimits, jobSizesByCost } from '../chunking/size.ts';
import { EffectClaims, type EffectClaim } from '../effects/claims.ts';
import { attemptRunning, launchAttempt, type AttemptDeps } from './rerun-failed.ts';
import { echoed } from '../shared/own.ts';
import type { NotRun, ResubmitAnswer } from './wire.ts';
import { siteJob } from './site-job.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { NotRun, ResubmitAnswer };

/**
 * POST /jobs/{token}/resubmit (and `rowfleet resubmit`): the user's corrected sheet back. The body is the job's
 * results.csv (or errors.csv) as the user edited it in Excel — CP932 or UTF-8 with or without a BOM, rows deleted
 * or reordered, values corrected, Excel's quoting — decoded and read by the split's own decoder and scanner. Each
 * row names its record (`rowfleet_record`, or errors.csv's `record`); the records that did not succeed run again
 * in the job's next attempt (core/jobs/attempts.ts: same token, per-attempt keys) with the row's values. Records
 * that succeeded, are IN_DOUBT, or whose effect claim says their side effect happened or may have (DONE, CLAIMED)
 * never run again: the answer lists them with the reason. Rows of the job the file leaves out are not run.
 */

/** errors.csv's own columns (core/messages/part.ts errorsCsv): its record column is `record`, its values `raw`. */
export const ERRORS_COLUMNS = ['line', 'record', 'code', 'message', 'raw'] as const;

export const NOT_RUN_LISTED = 100;
const UNKNOWN_LISTED = 20;

/** One row of the file: the record it names and its values in the job's columns, or why the rules reject it. */
export interface ResubmittedRow {
  readonly n: number;
  readonly fields?: readonly string[];
  readonly rejected?: { readonly code: string; readonly message: string; readonly raw: string };
}

/** How the file's columns map to the job's. */
interface Layout {
  /** Index of the record column. */
  readonly record: number;
  /** results.csv (or a sheet with the job's columns): the file's index of each of the job's columns. */
  readonly columns?: readonly number[];
  /** errors.csv: the index of `raw` (the record's text). */
  readonly raw?: number;
  readonly width: number;
}

export async function resubmitRecords(
  deps: AttemptDeps & Pick<PipelineDeps, 'limits'>,
  site: string,
  token: string,
  body: Buffer,
): Promise<ResubmitAnswer> {
  const job = await siteJob(deps, site, token);
  if (!isTerminal(job.state)) throw attemptRunning(job);
  if (!RETRYABLE_FROM.includes(job.state) || !job.resultKey) {
    throw new BadRequestError(
      'JOB_HAS_NO_RESULTS',
      `Job ${token} is ${job.state}: it has no results.csv to correct (only a job that ran has).`,
      409,
    );
  }
  if (body.length > deps.limits.directUploadMaxBytes) {
    throw new BadRequestError(
      'PAYLOAD_TOO_LARGE',
      `The file is ${body.length} bytes; a resubmission takes up to ${deps.limits.directUploadMaxBytes}: delete the rows that succeeded (they are not run again) and send the rest.`,
      413,
    );
  }
  const rows = await resubmittedRows(job, body, deps.limits.maxRecordBytes);
  const latest = await latestFailures(deps, job);
  const notRun: NotRun[] = [];
  const candidates = new Map<number, ResubmittedRow>();
  for (const row of [...rows.values()].sort((a, b) => a.n - b.n)) {
    const status = statusOf(latest.get(row.n)?.code);
    if (status === 'succeeded') {
      notRun.push({
        record: row.n,
        status,
        reason: 'it succeeded: a record that succeeded never runs again',
      });
    } else if (status === 'in_doubt') {
      notRun.push({
        record: row.n,
        status,
        reason:
          'its outcome is unknown (IN_DOUBT): its side effect may have happened, so it never runs again',
      });
    } else candidates.set(row.n, row);
  }
  // A record whose side effect happened, or may have, never runs again, whatever its row says (claims.ts).
  const processor = await processorInfo(job.processor, deps.env.stage);
  if (processor.sideEffects && candidates.size > 0) {
    const claims = await new EffectClaims(deps.env.table, deps.limits.retentionDays).ofJob(site, token, (n) =>
      candidates.has(n),
    );
    for (const [n, c] of claims) {
      const reason = claimReason(c);
      if (!reason) continue;
      candidates.delete(n);
      notRun.push({ record: n, status: statusOf(latest.get(n)?.code), reason });
    }
    notRun.sort((a, b) => a.record - b.record);
  }
  if (candidates.size === 0) {
    throw new BadRequestError(
      'NOTHING_TO_RESUBMIT',
      `None of the file's ${rows.size} rows can run again: ${summary(notRun)}.`,
      409,
    );
  }

  const id = randomUUID();
  const attempt = currentAttempt(job) + 1;
  const runs = [...candidates.values()];
  const rejectedNow: RecordFailure[] = [];
  const accepted: { n: number; line: number; fields: readonly string[] }[] = [];
  for (const r of runs) {
    const line = latest.get(r.n)?.line ?? 0;
    if (r.rejected) rejectedNow.push({ n: r.n, line, ...r.rejected });
    else accepted.push({ n: r.n, line, fields: r.fields ?? [] });
  }
  const wasRejected = runs.filter((r) => statusOf(latest.get(r.n)?.code) === 'rejected').length;
  const chunks = await writeSource(deps, job, attempt, id, accepted);
  // Written even when empty, as the source is: the finalize reads both without asking whether they exist.
  await deps.objects.put(
    keys.resubmit(site, token, attempt, id, 'rejected.jsonl'),
    rejectedNow.map((f) => JSON.stringify(f) + '\n').join(''),
    'application/x-ndjson',
  );
  await launchAttempt(deps, job, {
    chunks,
    runs: runs.map((r) => r.n),
    runsKey: keys.resubmit(site, token, attempt, id, 'runs.jsonl'),
    failed: job.failed - (runs.length - wasRejected),
    rejected: (job.rejected ?? 0) - wasRejected + rejectedNow.length,
    resubmit: id,
  });
  return {
    token,
    attempt,
    run: runs.length,
    notRun: notRun.slice(0, NOT_RUN_LISTED),
    notRunCount: notRun.length,
    job: await getJobView(deps, site, token),
  };
}

/** Why a claim keeps its record from running again, or undefined (it may run: FAILED or RELEASED). */
function claimReason(c: EffectClaim): string | undefined {
  if (c.status === 'DONE') return 'its side effect happened (its effect claim is DONE): it never runs again';
  if (c.status === 'CLAIMED')
    return 'its side effect may have happened (claimed, no outcome recorded): it never runs again';
  return undefined;
}

function summary(notRun: readonly NotRun[]): string {
  if (notRun.length === 0) return 'none of them names a record to run';
  const by = new Map<string, number>();
  for (const r of notRun) by.set(r.status, (by.get(r.status) ?? 0) + 1);
  return [...by].map(([s, k]) => `${k} ${s}`).join(', ') + ' (never run again)';
}

/** The job's latest outcome of each record that did not succeed (its latest errors.csv rows), by record. */
async function latestFailures(deps: Pick<PipelineDeps, 'objects'>, job: Job): Promise<Map<number, ErrorRow>> {
  const out = new Map<number, ErrorRow>();
  const key = keys.errorRows(job.site, job.token, currentAttempt(job));
  if ((await deps.objects.size(key)) === undefined) {
    if (job.failed + (job.rejected ?? 0) === 0) return out;
    throw new BadRequestError(
      'JOB_HAS_NO_RESULTS',
      `Job ${job.token} was finalized before the API kept the rows of its errors.csv: it cannot be resubmitted.`,
      409,
    );
  }
  const text = (await deps.objects.bytes(key)).toString('utf8');
  for (const l of text.split('\n')) {
    if (!l) continue;
    const r = JSON.parse(l) as ErrorRow;
    out.set(r.record, r);
  }
  return out;
}

/** The events of the file, read by the split's decoder and scanner (a file-level problem is its 422). */
async function fileEvents(body: Buffer, maxRecordBytes: number): Promise<BoundaryEvent[]> {
  const events: BoundaryEvent[] = [];
  const input = decodeToUtf8(
    (async function* () {
      yield body;
    })(),
  );
  for await (const batch of scanRecordBatches(input, { maxRecordBytes, withFields: true }))
    events.push(...batch);
  return events;
}

/** The job's fields a resubmitted file is read against. */
export type ResubmittedJob = Pick<Job, 'token' | 'header' | 'delimiter' | 'totalRecords'>;

/**
 * The file's rows by record, checked: its header against the job's (RESUBMIT_HEADER_CHANGED), every row naming
 * one record of the job once (RESUBMIT_UNKNOWN_RECORDS); each row's values in the job's columns with the formula
 * guard taken off, or why the split's record rules reject it.
 */
export async function resubmittedRows(
  job: ResubmittedJob,
  body: Buffer,
  maxRecordBytes: number,
): Promise<Map<number, ResubmittedRow>> {
  const events = await fileEvents(body, maxRecordBytes);
  const head = events.find((e) => e.kind === 'header');
  if (!head || head.kind !== 'header')
    throw new BadRequestError('EMPTY_FILE', 'The file has no header.', 422);
  const layout = layoutOf(job, head.header);
  const total = job.totalRecords ?? 0;
  const rows = new Map<number, ResubmittedRow>();
  const unknown: string[] = [];
  let unknownCount = 0;
  const refuse = (what: string) => {
    unknownCount++;
    if (unknown.length < UNKNOWN_LISTED) unknown.push(what);
  };
  for (const e of events) {
    if (e.kind === 'header') continue;
    const fields = e.kind === 'record' ? (e.fields ?? []) : rawFields(e.raw, head.delimiter);
    // A row with another field count than the header: its record column counted from the end when the
    // record column follows the job's columns (results.csv), from the start otherwise.
    const at =
      e.kind === 'record' || layout.record < (layout.columns?.length ?? 0)
        ? layout.record
        : fields.length - (layout.width - layout.record);
    const cell = unguardCell((fields[at] ?? '').trim());
    const n = /^\d{1,9}$/.test(cell) ? Number(cell) : NaN;
    const where = `line ${e.line}`;
    if (!(n >= 1 && n <= total)) {
      refuse(cell === '' ? `(no record number, ${where})` : `"${echoed(cell, 40)}" (${where})`);
      continue;
    }
    if (rows.has(n)) {
      refuse(`${n} (again, ${where})`);
      continue;
    }
    rows.set(n, rowOf(job, layout, n, e, fields, maxRecordBytes));
  }
  if (unknownCount > 0) {
    throw new BadRequestError(
      'RESUBMIT_UNKNOWN_RECORDS',
      `${unknownCount} rows name no record of job ${job.token} (1 to ${total}), or one another row names: ` +
        `${unknown.join(', ')}${unknownCount > unknown.length ? `, and ${unknownCount - unknown.length} more` : ''}. ` +
        'Keep rowfleet_record (errors.csv: record) as the sheet gave it, one row per record.',
      422,
      { records: unknown, count: unknownCount },
    );
  }
  if (rows.size === 0) {
    throw new BadRequestError('NOTHING_TO_RESUBMIT', 'The file has a header but no rows.', 409);
  }
  return rows;
}

/**
 * How the file's header maps to the job's: the job's own columns (any order), then any of results.csv's and
 * errors.csv's columns; a job column missing or a column the job does not have is a 422 naming them. errors.csv
 * as the finalize wrote it (its own columns only) gives the values in `raw`.
 */
function layoutOf(job: ResubmittedJob, header: readonly string[]): Layout {
  const names = header.map((h) => h.trim());
  const own = job.header ?? [];
  const ownSet = new Set(own);
  const extra = new Set<string>([...RESULT_COLUMNS, ...ERRORS_COLUMNS]);
  const recordCol = (name: string) => (ownSet.has(name) ? -1 : names.indexOf(name));
  const record = recordCol('rowfleet_record') >= 0 ? recordCol('rowfleet_record') : recordCol('record');
  const added = names.filter((h) => !ownSet.has(h) && !extra.has(h));
  const present = names.filter((h) => ownSet.has(h));
  const raw = recordCol('raw');
  if (record >= 0 && present.length === 0 && added.length === 0 && raw >= 0 && names.includes('record')) {
    return { record, raw, width: names.length };
  }
  const missing = own.filter((h) => !present.includes(h));
  if (missing.length > 0 || added.length > 0 || record < 0) {
    const parts = [
      ...(missing.length ? [`missing: ${missing.map((h) => `"${echoed(h, 60)}"`).join(', ')}`] : []),
      ...(added.length ? [`not the job's: ${added.map((h) => `"${echoed(h, 60)}"`).join(', ')}`] : []),
      ...(record < 0 ? ["no record column (rowfleet_record, or errors.csv's record)"] : []),
    ];
    throw new BadRequestError(
      'RESUBMIT_HEADER_CHANGED',
      `The header is not the job's (${parts.join('; ')}). Keep the job's columns as results.csv gave them; correct values, not column names.`,
      422,
      {
        ...(missing.length ? { missing } : {}),
        ...(added.length ? { added } : {}),
        ...(record < 0 ? { missing: [...missing, 'rowfleet_record'] } : {}),
      },
    );
  }
  return { record, columns: own.map((h) => names.indexOf(h)), width: names.length };
}

/** A row's values in the job's columns (the formula guard taken off), or why the split's record rules reject it. */
function rowOf(
  job: ResubmittedJob,
  layout: Layout,
  n: number,
  e: Exclude<BoundaryEvent, { kind: 'header' }>,
  fields: readonly string[],
  maxRecordBytes: number,
): ResubmittedRow {
  if (layout.raw !== undefined) {
    const raw = unguardCell(fields[layout.raw] ?? '');
    const read = readRange(Buffer.from(raw, 'utf8'), {
      header: job.header ?? [],
      delimiter: job.delimiter ?? ',',
      n,
      line: 1,
      maxRecordBytes,
    }).filter((r) => r.kind !== 'header');
    const r = read[0];
    if (read.length === 1 && r?.kind === 'record') return { n, fields: r.fields };
    const found = read.length === 1 && r?.kind === 'rejected' ? r : undefined;
    return {
      n,
      rejected: {
        code: found?.code ?? 'COLUMN_COUNT',
        message: `The resubmitted row (line ${e.line}): ${found?.message ?? `its raw holds ${read.length} records, not one.`}`,
        raw,
      },
    };
  }
  if (e.kind === 'rejected') {
    return {
      n,
      rejected: {
        code: e.code,
        message: `The resubmitted row (line ${e.line}): ${e.code === 'COLUMN_COUNT' ? recordErrors.columnCount(layout.width, fields.length) : e.message}`,
        raw: e.raw,
      },
    };
  }
  return { n, fields: (layout.columns ?? []).map((i) => unguardCell(fields[i] ?? '')) };
}

/**
 * Writes the attempt's own source — the records it runs, by record number, each led by its number and line in the
 * job's file (NUMBERED_COLUMNS), UTF-8 in the job's delimiter — and its chunk messages over it (`numbered`).
 */
async function writeSource(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'objects' | 'timings'>,
  job: Job,
  attempt: number,
  id: string,
  records: readonly { n: number; line: number; fields: readonly string[] }[],
): Promise<ChunkMessage[]> {
  const { site, token } = job;
  const delimiter = job.delimiter ?? ',';
  const key = keys.resubmit(site, token, attempt, id, 'source.csv');
  const texts = records.map((r) =>
    Buffer.from(csvRecord([String(r.n), String(r.line), ...r.fields], delimiter) + '\r\n', 'utf8'),
  );
  const source = Buffer.concat(texts);
  const etag = await deps.objects.put(key, source, 'text/csv; charset=utf-8');
  if (records.length === 0) return [];
  const target = await recordsPerChunk(deps, job, records.length);
  const chunks: ChunkMessage[] = [];
  let start = 0;
  for (let i = 0; i < records.length;) {
    let end = start;
    const numbers: number[] = [];
    const first = records[i]!;
    while (
      i < records.length &&
      (numbers.length === 0 ||
        (numbers.length < target && end - start + texts[i]!.length <= deps.limits.chunkMaxBytes))
    ) {
      numbers.push(records[i]!.n);
      end += texts[i]!.length;
      i++;
    }
    chunks.push({
      v: 2,
      site,
      token,
      chunk: chunks.length,
      key,
      start,
      end,
      n: first.n,
      line: first.line,
      records: numbers.length,
      ...(etag ? { etag } : {}),
      attempt,
      run: asRanges(numbers),
      numbered: true,
    });
    start = end;
  }
  return chunks;
}

/** Records per chunk: enough chunks for the job's workers, a slow processor's chunks by its cost (as the split). */
async function recordsPerChunk(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'timings'>,
  job: Job,
  records: number,
): Promise<number> {
  const workers = Math.max(
    1,
    job.workers ?? deps.limits.defaultWorkersPerJob ?? deps.limits.maxWorkersPerJob,
  );
  const l = chunkLimits(deps.limits, await jobSizesByCost(deps, job), records, workers);
  return Math.max(1, Math.min(l.maxRecords, l.targetRecords));
}
