import pMap from 'p-map';
import { derivedTimings } from '../../config/index.ts';
import { releaseJobPlaces } from '../budget/grant-workers.ts';
import { jobLogger, type Log } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { keys } from '../jobs/keys.ts';
import type { PipelineDeps, StageDeps } from '../deps.ts';
import type { Objects } from '../aws/objects.ts';
import {
  errorRowsJsonl,
  errorsCsv,
  META_PROBE,
  PART_META_OFFSET,
  partHeadroom,
  namesRehashed,
  readPartMeta,
  splitPart,
  type PartMeta,
  type RecordFailure,
} from '../messages/part.ts';
import { randomUUID } from 'node:crypto';
import { countsAgree, isTerminal, outcome, type RowCounts } from '../jobs/states.ts';
import { DeflatedEntry, dosDateTime, FINALIZE_ENTRIES, localEntryNames, ZipWriter } from '../messages/zip.ts';
import { copyEarlierEntries, earlierResults, type EarlierResults } from './attempts.ts';
import { attemptsOf, currentAttempt, endedAttempt } from '../jobs/attempts.ts';
import { expiresAt, type Job, type JobError, type NameHashKind } from '../jobs/store.ts';
import { recordJobUsage, usageStoreOf } from '../usage/store.ts';
import { RETRIED_CODES } from '../stop/rules.ts';
import { haltStopped, stoppedError, uncountedRecords } from './stopped.ts';
import { namesTakenElsewhere, type NamesTakenElsewhere } from './entry-names.ts';
import { withRecordText } from './record-text.ts';
import { earlierSheet, EarlierOutputs, LatestValues, PartOutputs, resultsCsv } from './results-sheet.ts';
import { chunkPlan, chunkRanges, PartsSheet, sheetFromParts, type SheetPiece } from './sheet-from-parts.ts';
import type { ChunkMessage } from '../messages/chunk.ts';
import {
  ATTR,
  currentTraceparent,
  endJobSpan,
  endWithError,
  jobAttrs,
  startSpan,
  type Span,
} from '../shared/trace.ts';

const PREFETCH = 4;
/** Parts whose meta (failures, counts) is read at once. */
const PART_METAS_IN_FLIGHT = 8;

/** What a finalize uses of the pipeline's dependencies (the finalize Lambda and the local runtime pass the bag). */
export type FinalizeDeps = StageDeps;

export interface FinalizeResult {
  readonly state: 'SUCCEEDED' | 'PARTIAL' | 'FAILED' | 'CANCELLED' | 'SKIPPED';
  readonly resultKey?: string;
  readonly counts?: RowCounts;
}

/** Who holds a finalize lease: the local runtime instance (known dead once another one owns the state), or Lambda. */
export function leaseHolder(instance: string | undefined, requestId: string): string {
  return instance ? `local:${instance}:${requestId}` : `lambda:${requestId}`;
}

/**
 * Finalizes a job once: one conditional RUNNING→FINALIZING move, then the zip (manifest.json, errors.csv,
 * one entry per record) streamed into S3, the outcome state, the queue deleted and idle workers stopped.
 * `requestId` names this invocation in the lease (the Lambda request id on AWS).
 */
export async function finalizeJob(
  deps: FinalizeDeps,
  site: string,
  token: string,
  requestId: string = randomUUID(),
  /** The attempt the request is for (a late request of an attempt before finalizes nothing); any when absent. */
  attempt?: number,
  /** The requester's span (the worker's chunk that completed the count, or the split): the finalize links to it. */
  traceparent?: string,
): Promise<FinalizeResult> {
  const log = jobLogger(site, token);
  const started = new Date();
  // A finalize that started longer ago than its lease and never finished died: it is taken over.
  const lease = derivedTimings(deps.timings).finalizeLeaseSeconds;
  const holder = leaseHolder(deps.env.instance, requestId);
  const job = await deps.jobs.beginFinalize(site, token, started, lease, holder, attempt);
  if (!job) {
    log.info('finalize skipped: job is not running, or another finalize holds it');
    // A finalize that died between the final state and its usage write left the figures out; recording
    // is exactly-once, so a redelivered request completes it and otherwise changes nothing.
    const finished = await deps.jobs.get(site, token);
    if (finished && isTerminal(finished.state)) {
      await recordJobUsage(usageStoreOf(deps), finished);
      await releaseJobPlaces(deps, site, token);
    }
    return { state: 'SKIPPED' };
  }
  const span = startSpan(deps.tracing, 'rowfleet.finalize', currentTraceparent(job), jobAttrs(job), {
    startTime: started,
    links: [traceparent],
  });
  try {
    return await buildAndFinish(deps, job, started, log, span);
  } catch (err) {
    endWithError(span, err);
    // Let the redelivered request (or the reaper) finalize again now, not after the lease runs out.
    await deps.jobs.releaseFinalize(site, token, started).catch(() => undefined);
    throw err;
  }
}

async function buildAndFinish(
  deps: FinalizeDeps,
  job: Job,
  started: Date,
  log: Log,
  span: Span,
): Promise<FinalizeResult> {
  const { site, token } = job;
  // A retry's attempt (core/jobs/attempts.ts): its own parts, merged over what the attempts before left.
  const attempt = currentAttempt(job);
  const earlier = await earlierResults(deps, job);
  // The count decided which variant of a chunk's part is the real one.
  const partKey = (c: number) =>
    job.gaveUpChunks?.has(c) ? keys.gaveUpPart(site, token, c, attempt) : keys.part(site, token, c, attempt);
  const allChunks = Array.from({ length: job.totalChunks ?? 0 }, (_, i) => i);
  // A job stopped early (cancelled, over its failure rate) zips only the chunks counted before the stop.
  const halted = job.stop ? await haltStopped(deps, { ...job, stop: job.stop }) : undefined;
  const chunkIds = halted?.chunks ?? allChunks;

  // Pass 1: the meta of every part (one short range read each), so errors.csv comes before the rows.
  const failures: RecordFailure[] = [...(earlier?.kept ?? [])];
  // The split's rejections are in the kept rows of the attempts before (they are never run again).
  const splitRejections: RecordFailure[] = [];
  if (job.rejected && !earlier) {
    const text = (await deps.objects.bytes(keys.rejected(site, token))).toString('utf8');
    for (const line of text.split('\n')) if (line) splitRejections.push(JSON.parse(line) as RecordFailure);
    failures.push(...splitRejections);
  }
  const { metas, elsewhere } = await readMetas(deps, chunkIds, partKey, metaProbe(job), job.nameHash);
  for (const m of metas) failures.push(...m.failures);
  // A stopped attempt's records no counted chunk holds: reported by their effect claims, or never processed.
  const uncounted = halted
    ? await uncountedRecords(deps, job, halted.stop, metas, failures, earlier?.runs)
    : undefined;
  failures.push(...(uncounted?.failures ?? []));

  let counts: RowCounts = {
    total: job.totalRecords ?? 0,
    succeeded: job.succeeded + (uncounted?.succeeded ?? 0),
    failed: job.failed + (uncounted?.failures.length ?? 0),
    rejected: job.rejected ?? 0,
  };
  const problem = jobProblem(job, counts, metas, failures, earlier);
  if (problem?.code === 'COUNTS_DISAGREE') {
    log.error('finalize: the counts disagree; the job fails', { ...counts, error: problem.message });
  }
  // Records whose outputs take a name a record of an earlier chunk took (found in readMetas): failed, their
  // entries left out.
  if (elsewhere.failures.length > 0) {
    failures.push(...(await withRecordText(deps, job, elsewhere.failures)));
    const k = elsewhere.failures.length;
    counts = { ...counts, succeeded: counts.succeeded - k, failed: counts.failed + k };
  }
  const state = problem ? 'FAILED' : (halted?.state ?? outcome(counts));
  const error =
    problem ??
    (halted && uncounted ? stoppedError(halted.stop, job.succeeded + job.failed, uncounted) : undefined);
  const resultKey = keys.result(site, token, attempt);
  // The manifest is the zip's first entry: its attempts end when the results are assembled. The job item's end
  // (finishedAt, the attempt's endedAt) is the moment its state becomes final, after the zip is written.
  const manifestAttempts = earlier ? endedAttempt(job, state, counts, new Date().toISOString()) : undefined;
  // results.csv from the workers' rows where the parts hold every record's latest row (sheet-from-parts.ts);
  // from the source read again otherwise.
  const pieces =
    !earlier && !problem && elsewhere.failures.length === 0
      ? await sheetPieces(deps, job, metas, chunkIds, halted !== undefined)
      : undefined;
  const fromParts = pieces !== undefined && sheetFromParts(pieces.pieces, splitRejections, counts.total);
  const zipping = startSpan(deps.tracing, 'rowfleet.zip', span.spanContext(), jobAttrs(job));
  zipping.setAttribute('rowfleet.sheet_from_parts', fromParts);
  const upload = deps.objects.multipart(resultKey, 'application/zip');
  // Every entry carries the job's receipt time (the workers stamped theirs the same way).
  const zip = new ZipWriter(upload.write, dosDateTime(new Date(job.receivedAt)));
  await zip.addEntry(
    FINALIZE_ENTRIES.manifest,
    JSON.stringify(
      manifest(
        { ...job, ...(manifestAttempts ? { attempts: manifestAttempts } : {}) },
        state,
        counts,
        started,
      ),
      null,
      2,
    ) + '\n',
  );
  await zip.addEntry(FINALIZE_ENTRIES.errors, errorsCsv(failures));
  // Every record that succeeded in an attempt before, then this attempt's.
  const copiedEarlier = earlier ? await copyEarlierEntries(deps, earlier, zip) : undefined;

  // results.csv is also its own object beside the zip (GET /jobs/{token}/results).
  const sheetKey = keys.resultsSheet(site, token, attempt);
  // One part in flight: the zip's upload beside it holds its own (the finalize's memory bound).
  const sheet = deps.objects.multipart(sheetKey, 'text/csv', 1);
  let sheetBytes: number;
  // From the parts, its bytes are deflated for the zip as they are written (the zip's entry comes last, after every
  // record's): the object is never read back.
  const deflated = fromParts ? new DeflatedEntry() : undefined;
  const fetchPart = (c: number) => deps.objects.bytes(partKey(c));
  try {
    // Pass 2: copy each part's prebuilt entries into the zip, in chunk order, a few parts read ahead
    // (a part is one chunk's output, a few MB at most, so memory stays bounded); its rows of results.csv go to
    // the sheet's own object meanwhile.
    const rows = deflated
      ? new PartsSheet(job, splitRejections, async (b) => {
          await sheet.write(b);
          await deflated.write(b);
        })
      : undefined;
    await rows?.begin();
    // A stopped job's chunks no part was counted for: their rows from their ranges of the source, in chunk order.
    const unread = fromParts ? [...pieces.unread] : [];
    const latest = new Map<number, RecordFailure>();
    if (unread.length > 0) for (const f of failures) latest.set(f.n, f);
    // Their ranges in the same order, a few read ahead.
    const ranges =
      unread.length > 0 ? chunkRanges(deps, job, [...unread])[Symbol.asyncIterator]() : undefined;
    const unreadBefore = async (c: number) => {
      while (rows && ranges && unread[0] && unread[0].chunk < c) {
        const msg = unread.shift()!;
        const range = await ranges.next();
        if (range.done) throw new Error(`chunk ${msg.chunk}: its range was not read`);
        await rows.source(msg, range.value, latest);
      }
    };
    const buffers = new PartBuffers(deps.objects);
    const readPart = (c: number) => buffers.read(partKey(c));
    const ahead = chunkIds.slice(0, PREFETCH).map(readPart);
    // By position in chunkIds, never by chunk number: a stopped job's counted chunks may have gaps.
    for (const [i, c] of chunkIds.entries()) {
      await unreadBefore(c);
      const read = await ahead.shift()!;
      const part = splitPart(read.bytes);
      const next = chunkIds[i + PREFETCH];
      if (next !== undefined) ahead.push(readPart(next));
      await zip.addPrebuilt(part.entries, elsewhere.skip.get(c));
      if (rows) {
        // Read again since its meta was: a part is only ever overwritten by a delivery of the same chunk.
        if (!part.sheet) throw new Error(`part of chunk ${c}: its results.csv rows are gone`);
        await rows.part(part.meta, part.sheet);
      }
      // Its bytes are copied (the uploads) or consumed (the sheet's deflate) by now.
      read.release();
    }
    if (uncounted) await zip.addPrebuilt(uncounted.entries);
    if (rows && deflated) {
      await unreadBefore(Infinity);
      await rows.end();
      await deflated.end();
      await sheet.done();
      sheetBytes = rows.bytes;
      await zip.addDeflated(FINALIZE_ENTRIES.results, deflated);
    } else {
      sheetBytes = await sheetFromSource(
        deps,
        job,
        zip,
        sheet.write,
        failures,
        chunkIds,
        fetchPart,
        earlier,
        copiedEarlier,
      );
      await sheet.done();
    }
  } catch (err) {
    deflated?.destroy();
    await sheet.abort();
    throw err;
  }
  const written = await zip.finish();
  await upload.done();
  zipping.setAttributes({ 'rowfleet.entries': written.entries, 'rowfleet.result_bytes': written.bytes });
  zipping.end();

  // errors.csv's rows for the API (GET /jobs/{token}/errors), values as they are.
  if (failures.length > 0) {
    await deps.objects.putLarge(
      keys.errorRows(site, token, attempt),
      errorRowsJsonl(failures),
      'application/x-ndjson',
    );
  }
  // The records a retry runs again, written before the job ends, so a retry asked at once finds them.
  const failed = failures.filter((f) => RETRIED_CODES.includes(f.code));
  if (failed.length > 0) {
    await deps.objects.putLarge(
      keys.failed(site, token, attempt),
      Buffer.from(failed.map((f) => JSON.stringify({ n: f.n, line: f.line })).join('\n') + '\n', 'utf8'),
    );
  }

  const finishedAt = new Date().toISOString();
  const attempts = earlier ? endedAttempt(job, state, counts, finishedAt) : undefined;
  const finished = await deps.jobs.transition(site, token, state, {
    ...(error ? { error } : {}),
    // A stopped job's uncounted records count by their claims, or as failed; records refused at finalize for
    // their entry names count as failed, not succeeded.
    ...(halted || elsewhere.failures.length > 0
      ? { succeeded: counts.succeeded, failed: counts.failed }
      : {}),
    errorRows: failures.length,
    retryable: failed.length,
    ...(attempts ? { attempts } : {}),
    resultKey,
    resultBytes: written.bytes,
    resultsSheetKey: sheetKey,
    resultsSheetBytes: sheetBytes,
    finishedAt,
    expiresAt: expiresAt(deps.limits.retentionDays),
  });
  if (finished) {
    await recordJobUsage(usageStoreOf(deps), finished);
    await deps.notifier?.jobFinished(finished, state, counts);
  }
  const queueUrl = job.queueName ? await deps.queues.queueUrl(job.queueName) : undefined;
  if (queueUrl) await deps.queues.deleteQueue(queueUrl);
  const stopped = await deps.launcher.stop(site, token);
  await releaseJobPlaces(deps, site, token);
  // The parts are in the zip now; the source stays (for retries) until the bucket's lifecycle expires it.
  // Both variants: a losing delivery may have left the other one behind (and a stopped job's uncounted chunks theirs).
  await deps.objects.deleteMany(
    allChunks.flatMap((c) => [keys.part(site, token, c, attempt), keys.gaveUpPart(site, token, c, attempt)]),
  );
  publishMetrics(deps.env.stage, {
    FinalizeDuration: Date.now() - started.getTime(),
    [OUTCOME_METRIC[state]]: 1,
  });
  span.setAttributes({
    [ATTR.outcome]: state,
    [ATTR.succeeded]: counts.succeeded,
    [ATTR.failed]: counts.failed,
    [ATTR.rejected]: counts.rejected,
    'rowfleet.gave_up_chunks': job.gaveUpChunks?.size ?? 0,
    'rowfleet.error_rows': failures.length,
  });
  span.end();
  // The job (or its retry attempt) ends here: its span, chosen at upload, is emitted by the finalize that ended it.
  if (finished) endJobSpan(deps.tracing, finished, state, new Date());
  log.info('job finalized', {
    state,
    ...counts,
    entries: written.entries,
    bytes: written.bytes,
    stoppedWorkers: stopped,
    ms: Date.now() - started.getTime(),
  });
  return { state, resultKey, counts };
}

/** The bytes a part buffer starts with (a part is a few MB: it grows to the largest part read). */
const PART_BUFFER = 4 * 1024 * 1024;

/**
 * Parts read into buffers used again from part to part (a few: those read ahead), instead of a buffer joined anew
 * for each: a million records' parts are hundreds of MB, and V8 counts every MB of buffers allocated towards its
 * next full GC.
 */
class PartBuffers {
  private readonly free: Buffer[] = [];

  constructor(private readonly objects: Pick<Objects, 'stream'>) {}

  /** The part's bytes, valid until `release` (then its buffer holds another part). */
  async read(key: string): Promise<{ bytes: Buffer; release: () => void }> {
    let buf = this.free.pop() ?? Buffer.allocUnsafe(PART_BUFFER);
    let used = 0;
    for await (const c of await this.objects.stream(key)) {
      const chunk = c as Buffer;
      if (used + chunk.length > buf.length) {
        const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, used + chunk.length));
        buf.copy(bigger, 0, 0, used);
        buf = bigger;
      }
      used += chunk.copy(buf, used);
    }
    const held = buf;
    return { bytes: held.subarray(0, used), release: () => void this.free.push(held) };
  }
}

/**
 * What results.csv is made of when it can be made without reading the whole source (sheet-from-parts.ts): the
 * counted parts' ranges in chunk order and, for a stopped job, the chunks of the split's plan no part was counted
 * for (`unread`: their ranges are read). Undefined when a stopped job has no plan (split before it was kept) or its
 * source is gone (the sheet from the source then lists its records without their values, as it always did).
 */
async function sheetPieces(
  deps: Pick<PipelineDeps, 'objects'>,
  job: Job,
  metas: readonly PartMeta[],
  chunkIds: readonly number[],
  stopped: boolean,
): Promise<{ pieces: SheetPiece[]; unread: ChunkMessage[] } | undefined> {
  const piece = (m: PartMeta): SheetPiece => ({
    first: m.first,
    records: m.records,
    rows: m.sheet !== undefined,
  });
  if (!stopped) return { pieces: metas.map(piece), unread: [] };
  const plan = await chunkPlan(deps, job);
  const anyChunk = plan?.values().next().value;
  if (!plan || (anyChunk && (await deps.objects.size(anyChunk.key)) === undefined)) return undefined;
  // metas are in chunkIds' order.
  const counted = new Map(chunkIds.map((c, i) => [c, metas[i]!]));
  const pieces: SheetPiece[] = [];
  const unread: ChunkMessage[] = [];
  for (let c = 0; c < (job.totalChunks ?? 0); c++) {
    const m = counted.get(c);
    const msg = plan.get(c);
    if (m) pieces.push(piece(m));
    else if (msg) {
      pieces.push({ first: msg.n, records: msg.records, rows: true });
      unread.push(msg);
    } else return undefined;
  }
  return { pieces, unread };
}

/**
 * results.csv from the job's source read again (results-sheet.ts resultsCsv), written to `write` and streamed into
 * the zip: every record in order with its latest outcome, its outputs from its part (read again) or from the
 * sheet of the attempt before, its values from a resubmission that gave it others. For every sheet
 * {@link sheetFromParts} does not make. Its bytes.
 */
async function sheetFromSource(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Job,
  zip: ZipWriter,
  write: (b: Buffer) => Promise<void>,
  failures: readonly RecordFailure[],
  chunkIds: readonly number[],
  fetchPart: (chunk: number) => Promise<Buffer>,
  earlier: EarlierResults | undefined,
  copiedEarlier: { resultsAt?: number } | undefined,
): Promise<number> {
  const latest = new Map<number, RecordFailure>();
  for (const f of failures) latest.set(f.n, f);
  const outputs = new PartOutputs(chunkIds, fetchPart);
  // Records an attempt before ran keep the outputs its results.csv showed.
  const before =
    earlier && copiedEarlier?.resultsAt !== undefined
      ? new EarlierOutputs(
          await earlierSheet(deps, job, earlier.zipKey, copiedEarlier.resultsAt),
          earlier.runs,
        )
      : undefined;
  // Records a resubmission ran show the values they ran with.
  const values = await LatestValues.open(deps, job);
  let bytes = 0;
  async function* teed(rows: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of rows) {
      await write(b);
      bytes += b.length;
      yield b;
    }
  }
  try {
    await zip.addStream(
      FINALIZE_ENTRIES.results,
      teed(resultsCsv(deps, job, latest, outputs, before, values)),
    );
  } finally {
    await before?.close();
    await values?.close();
  }
  return bytes;
}

/**
 * The meta of every part (one short range read each, a few at once), in chunk order, and the records whose outputs
 * take a name a record of an earlier chunk took. The metas come back without their entry names: those are a
 * million records' hashes (~33 MB of strings at 1M records), needed by this check only, and the metas are kept
 * until the finalize ends.
 */
async function readMetas(
  deps: Pick<PipelineDeps, 'objects'>,
  chunkIds: readonly number[],
  partKey: (chunk: number) => string,
  probe: number,
  /** The job's name hash (Job.nameHash). */
  nameHash: NameHashKind | undefined,
): Promise<{ metas: PartMeta[]; elsewhere: NamesTakenElsewhere }> {
  const metas = await pMap(
    chunkIds,
    async (c) => {
      const meta = await readPartMeta(deps.objects, partKey(c), probe);
      if (!meta.names || meta.nameHash === nameHash) return meta;
      // Hashed otherwise than its job's names (a worker from before a deploy that changed the hash): hashed again
      // from its own entries' names, the part read whole, so the check compares like with like.
      const { entries } = splitPart(await deps.objects.bytes(partKey(c)));
      return { ...meta, names: namesRehashed(meta.names, localEntryNames(entries), nameHash), nameHash };
    },
    { concurrency: PART_METAS_IN_FLIGHT },
  );
  const elsewhere = namesTakenElsewhere(metas);
  return { metas: metas.map(({ names: _names, ...meta }) => meta), elsewhere };
}

/**
 * The bytes a part's meta is first read with: the room its worker kept for it (partHeadroom) at a
 * quarter more records than the job's chunks hold on average (the split makes them about equal), so a part of a
 * large job is not read twice for its meta (at 1M records a meta's names are ~330 KB).
 */
function metaProbe(job: Pick<Job, 'totalRecords' | 'totalChunks'>): number {
  const perChunk = job.totalChunks ? (job.totalRecords ?? 0) / job.totalChunks : 0;
  return Math.max(META_PROBE, PART_META_OFFSET + partHeadroom(Math.ceil(perChunk * 1.25)));
}

/**
 * Why a job must not end as its counts say, or undefined. SOURCE_CHANGED: a chunk's bytes were not the ones the
 * split validated. COUNTS_DISAGREE: succeeded + failed + rejected is not the total, or the counts the workers
 * recorded are not those of the parts; then every record found in no part and no error line is added to
 * `failures` (so errors.csv names it).
 */
function jobProblem(
  job: Job,
  counts: RowCounts,
  metas: readonly PartMeta[],
  failures: RecordFailure[],
  earlier?: EarlierResults,
): JobError | undefined {
  const changed = failures.filter((f) => f.code === 'SOURCE_CHANGED').length;
  if (changed > 0) {
    return {
      code: 'SOURCE_CHANGED',
      message: `${changed} records were not read from the bytes the split validated (the source changed); errors.csv lists them.`,
    };
  }
  const parts = metas.reduce((a, m) => ({ s: a.s + m.succeeded, f: a.f + m.failed }), { s: 0, f: 0 });
  // A retry's attempt counted on top of the job's counts when it began.
  const before = attemptsOf(job).at(-1)?.before ?? { succeeded: 0, failed: 0 };
  if (
    countsAgree(counts) &&
    parts.s === job.succeeded - before.succeeded &&
    parts.f === job.failed - before.failed
  )
    return undefined;
  const missing = unaccounted(counts.total, metas, failures, earlier?.runs);
  for (const n of missing) {
    failures.push({
      n,
      line: 0,
      code: 'COUNTS_DISAGREE',
      message: 'record found in no result and no error line',
      raw: '',
    });
  }
  return {
    code: 'COUNTS_DISAGREE',
    message:
      `The counts disagree: ${counts.total} records, but ${counts.succeeded} succeeded + ${counts.failed} failed + ` +
      `${counts.rejected} rejected were counted (the parts hold ${parts.s} + ${parts.f}); ` +
      `${missing.length} records unaccounted for are listed in errors.csv.`,
  };
}

/**
 * Records 1..total (of a retry's attempt: the records it runs) in no error line and in no part's range of
 * successes. A part's range (its chunk's first record and record count) minus its failures and the rejected
 * records are its successes, when its count says so; a part whose count does not match its range accounts for
 * none of them.
 */
function unaccounted(
  total: number,
  metas: readonly PartMeta[],
  failures: readonly RecordFailure[],
  runs?: ReadonlySet<number>,
): number[] {
  const seen = new Uint8Array(total + 1);
  for (const f of failures) if (f.n >= 1 && f.n <= total) seen[f.n] = 1;
  const rejectedOrFailed = new Set(failures.map((f) => f.n));
  for (const m of metas) {
    if (m.first === undefined || m.records === undefined) continue;
    const successes: number[] = [];
    for (let n = m.first; n < m.first + m.records && n <= total; n++) {
      if (!rejectedOrFailed.has(n) && (!runs || runs.has(n))) successes.push(n);
    }
    if (successes.length !== m.succeeded) continue;
    for (const n of successes) seen[n] = 1;
  }
  const missing: number[] = [];
  for (let n = 1; n <= total; n++) if (!seen[n] && (!runs || runs.has(n))) missing.push(n);
  return missing;
}

const OUTCOME_METRIC = {
  SUCCEEDED: 'JobsSucceeded',
  PARTIAL: 'JobsPartial',
  FAILED: 'JobsFailed',
  CANCELLED: 'JobsCancelled',
} as const;

export function manifest(job: Job, state: string, counts: RowCounts, finalizingAt: Date) {
  return {
    token: job.token,
    site: job.site,
    state,
    fileName: job.fileName,
    encoding: job.encoding,
    processor: job.processor,
    ...(job.retryOf ? { retryOf: job.retryOf } : {}),
    ...(job.stop ? { stop: job.stop } : {}),
    ...(job.attempts ? { attempts: job.attempts.map(({ before: _before, trace: _trace, ...a }) => a) } : {}),
    header: job.header,
    counts,
    timings: {
      receivedAt: job.receivedAt,
      runningAt: job.runningAt,
      splitDoneAt: job.splitDoneAt,
      finalizingAt: finalizingAt.toISOString(),
    },
  };
}
