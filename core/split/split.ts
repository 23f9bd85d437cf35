import { Chunker, mergeChunks, queueChunks, type ChunkMessage } from '../messages/chunk.ts';
import type { RejectedRecord } from '../source/csv.ts';
import { scanRecordBatches } from '../source/scan.ts';
import { decodeToUtf8, type DecodeInfo } from '../source/decode.ts';
import { FileRejectedError } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { keys, reportQueueName } from '../jobs/keys.ts';
import type { PipelineDeps, StageDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { expiresAt, type Job, type JobError } from '../jobs/store.ts';
import { recordJobUsage, usageStoreOf } from '../usage/store.ts';
import { askForWorkers, grantWorkers } from '../budget/grant-workers.ts';
import type { Limits } from '../../config/index.ts';
import { Utf8SourceCopy } from './source-copy.ts';
import { workerCount } from './worker-count.ts';
import { processorInfo } from '../processors/index.ts';
import { missingColumns } from '../processors/types.ts';
import { chunkLimits, jobSizesByCost, pieceLimits } from '../chunking/size.ts';
import {
  ATTR,
  currentTraceparent,
  endJobSpan,
  endWithError,
  startJobSpan,
  traceparentOf,
} from '../shared/trace.ts';

/**
 * What a split uses: the job and its file, the sizing limits, its queue and chunks, the grant and launch of its
 * workers, and for a rejected file the job's end (its usage, its notification, its span).
 */
export type SplitDeps = StageDeps & Pick<PipelineDeps, 'budget'>;

export interface SplitResult {
  readonly state: 'QUEUED' | 'RUNNING' | 'REJECTED' | 'SKIPPED';
  readonly error?: JobError;
  readonly records?: number;
  readonly chunks?: number;
  readonly workers?: number;
  /** Workers not started (the launch was refused): the reaper launches them later. */
  readonly launchFailed?: number;
}

/** What reading the whole file found, when nothing in it rejects the file. */
interface ValidatedFile {
  readonly header: string[];
  readonly delimiter: string;
  readonly encoding: DecodeInfo['encoding'];
  /** Numbered records, rejected ones included. */
  readonly records: number;
  readonly rejected: RejectedRecord[];
  /** Fine-grained byte ranges of the UTF-8 source (joined into chunks once the counts are known). */
  readonly pieces: ChunkMessage[];
}

/** A file rejected as a whole. */
interface RejectedFile {
  readonly rejection: FileRejectedError;
  readonly encoding: DecodeInfo['encoding'];
}

/** What the split and the check read of a job: where it belongs, its processor and its options. */
type JobToRead = Pick<Job, 'site' | 'token' | 'processor' | 'options'>;

/** One pass over a file as far as it went: what {@link readRecords} found, filled in as the records go by. */
interface Reading {
  header: string[];
  delimiter: string;
  records: number;
  rejected: RejectedRecord[];
  pieces: ChunkMessage[];
  /** Columns the processor needs that the header lacks (the check reads on; the split refuses at the header). */
  missing: string[];
  /** The first accepted records with their fields, when asked for (the check's samples). */
  samples: { n: number; line: number; fields: string[] }[];
}

/**
 * Splits a received job: takes its source out of the upload form's reach, validates the whole file first (so
 * a rejected file never gets a queue or a worker), then puts the job to work.
 */
export async function splitJob(
  deps: SplitDeps,
  site: string,
  token: string,
  opts: {
    workers?: number;
    /** Take over a split that is known dead (a killed local runtime), without waiting out its lease. */
    takeOver?: boolean;
  } = {},
): Promise<SplitResult> {
  const started = Date.now();
  // The split may run as long as the upload function does; one that started longer ago died.
  const lease = opts.takeOver ? 0 : deps.timings.uploadTimeoutSeconds;
  const claimed = await deps.jobs.beginSplit(site, token, new Date(started), lease);
  const job = claimed ? await claimUpload(deps, claimed) : undefined;
  if (!job) {
    jobLogger(site, token).info('split skipped: job is not waiting to be split, or another split has it');
    return { state: 'SKIPPED' };
  }
  const span = startJobSpan(deps.tracing, 'rowfleet.split', job, { startTime: started });
  try {
    const file = await validateWholeFile(deps, job);
    const r =
      'rejection' in file
        ? await rejectFile(deps, job, file, started)
        : await startWork(deps, job, file, started, opts.workers, traceparentOf(span));
    span.setAttributes({
      [ATTR.outcome]: r.state,
      [ATTR.records]: r.records ?? 0,
      [ATTR.chunks]: r.chunks ?? 0,
      [ATTR.workers]: r.workers ?? 0,
      'rowfleet.source_bytes': job.sourceBytes ?? 0,
    });
    span.end();
    return r;
  } catch (err) {
    endWithError(span, err);
    // Let the redelivered event (or a retry) split again now, not after the claim runs out.
    await deps.jobs.releaseSplit(site, token, new Date(started)).catch(() => undefined);
    throw err;
  }
}

/**
 * A presigned upload's form can be posted again until it expires (as on S3): the split moves the upload to a key
 * only it writes (one server-side copy, then the upload is deleted), and validates and serves that. A later
 * post to the form lands on the old key, which nothing reads. Direct uploads are stored by the API itself under
 * a key no form names, and are read where they are. Undefined when the job stopped being RECEIVED meanwhile.
 */
async function claimUpload(deps: Pick<PipelineDeps, 'jobs' | 'objects'>, job: Job): Promise<Job | undefined> {
  const upload = keys.source(job.site, job.token);
  if (job.upload !== 'presigned' || job.sourceKey !== upload) return job;
  const moved = keys.movedSource(job.site, job.token);
  await deps.objects.copy(upload, moved);
  if (!(await deps.jobs.moveSource(job.site, job.token, moved))) return undefined;
  await deps.objects.delete(upload).catch((err: unknown) => {
    // Only storage is at stake (the bucket's lifecycle removes it): nothing reads the upload key any more.
    jobLogger(job.site, job.token).warn('could not delete the moved upload', { error: err as Error });
  });
  return { ...job, sourceKey: moved };
}

/**
 * Reads the whole upload once: decodes it (BOM / UTF-8 / CP932 / UTF-16), checks every record, and cuts the
 * UTF-8 source into byte ranges as the records go by. A CP932 or UTF-16 upload is transcoded to a UTF-8 copy
 * during the same pass. File-level problems come back as a rejection; anything else (storage down) throws.
 * Each range names the source version read (its ETag), which every worker read is pinned to.
 */
async function validateWholeFile(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'objects' | 'timings'>,
  job: Job,
): Promise<ValidatedFile | RejectedFile> {
  const info: DecodeInfo = {};
  const copy = new Utf8SourceCopy(deps.objects, job.site, job.token, info);
  try {
    const source = await deps.objects.open(job.sourceKey);
    const utf8 = decodeToUtf8(source.body, info);
    const read = emptyReading();
    await readRecords(copy.tee(utf8), job, deps, read);
    checkHeader(read.header, read.delimiter, deps.limits);
    // The key and the BOM shift are known once the whole file is read (the encoding may be open until then).
    const { key, etag, shift } = await copy.finish({ key: job.sourceKey, etag: source.etag });
    const pieces = read.pieces.map((p) => ({
      ...p,
      key,
      ...(etag ? { etag } : {}),
      start: p.start + shift,
      end: p.end + shift,
    }));
    const { header, delimiter, records, rejected } = read;
    return { header, delimiter, records, rejected, pieces, encoding: info.encoding };
  } catch (err) {
    await copy.abort();
    if (err instanceof FileRejectedError) return { rejection: err, encoding: info.encoding };
    throw err;
  }
}

/** The header is kept in the job's item (400 KB at most): a header above the stage's limits rejects the file. */
export function checkHeader(
  header: readonly string[],
  delimiter: string,
  limits: Pick<Limits, 'maxHeaderBytes' | 'maxColumns'>,
): void {
  if (header.length > limits.maxColumns) {
    throw new FileRejectedError(
      'HEADER_TOO_LARGE',
      `The header has ${header.length} columns; at most ${limits.maxColumns} are accepted.`,
      1,
    );
  }
  const bytes = Buffer.byteLength(header.join(delimiter), 'utf8');
  if (bytes > limits.maxHeaderBytes) {
    throw new FileRejectedError(
      'HEADER_TOO_LARGE',
      `The header line is ${bytes} bytes; at most ${limits.maxHeaderBytes} are accepted.`,
      1,
    );
  }
}

/**
 * Parses the UTF-8 stream strictly and groups its records into fine pieces (keys and offsets set later), into
 * `into` as it goes (so a file rejected part-way still tells how far it got). A header lacking what the processor
 * needs is refused at once (`missing: 'reject'`, the split) or noted and read on (`'report'`, the check).
 */
async function readRecords(
  utf8: AsyncIterable<Buffer>,
  job: JobToRead,
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'timings'>,
  into: Reading,
  o: { readonly missing: 'reject' | 'report'; readonly samples?: number } = { missing: 'reject' },
): Promise<void> {
  let chunker: Chunker | undefined;
  const byCost = await jobSizesByCost(deps, job);
  const { needs } = await processorInfo(job.processor, deps.env.stage);
  const samples = o.samples ?? 0;
  const scan = { maxRecordBytes: deps.limits.maxRecordBytes, withFields: samples > 0 };
  for await (const batch of scanRecordBatches(utf8, scan)) {
    for (const ev of batch) {
      if (ev.kind === 'header') {
        into.missing = missingColumns(needs, { site: job.site, options: job.options ?? {} }, ev.header);
        if (o.missing === 'reject' && into.missing.length > 0)
          throw fieldsMissingError(job.processor, into.missing);
        into.header = ev.header;
        into.delimiter = ev.delimiter;
        chunker = new Chunker(job.site, job.token, '', ev, pieceLimits(deps.limits, byCost));
        continue;
      }
      into.records = ev.n;
      if (ev.kind === 'rejected')
        into.rejected.push({ n: ev.n, line: ev.line, code: ev.code, message: ev.message, raw: ev.raw });
      else if (into.samples.length < samples && ev.fields)
        into.samples.push({ n: ev.n, line: ev.line, fields: ev.fields });
      const full = chunker!.add(ev);
      if (full) into.pieces.push(full);
    }
  }
  const last = chunker?.flush();
  if (last) into.pieces.push(last);
}

const emptyReading = (): Reading => ({
  header: [],
  delimiter: ',',
  records: 0,
  rejected: [],
  pieces: [],
  missing: [],
  samples: [],
});

/**
 * A header lacking what the job's processor needs (RowProcessor.needs) could only fail every record: the file is
 * rejected as soon as its header is read, naming the missing columns. The check (POST /jobs?check=true) names
 * them with the same code and message.
 */
export function fieldsMissingError(processor: string, missing: readonly string[]): FileRejectedError {
  const names = missing.map((c) => JSON.stringify(c)).join(', ');
  return new FileRejectedError(
    'PROCESSOR_FIELDS_MISSING',
    `The header lacks ${missing.length === 1 ? 'the column' : 'the columns'} ${names} that the processor "${processor}" needs; no record could succeed.`,
    1,
  );
}

/** A rejected file: the job ends REJECTED (counted in the usage, announced), with no queue and no worker. */
async function rejectFile(
  deps: Pick<PipelineDeps, 'env' | 'jobs' | 'limits' | 'notifier' | 'tracing' | 'usage'>,
  job: Job,
  file: RejectedFile,
  started: number,
): Promise<SplitResult> {
  const err = file.rejection;
  const error: JobError = { code: err.code, message: err.message, ...(err.line ? { line: err.line } : {}) };
  const finished = await deps.jobs.transition(job.site, job.token, 'REJECTED', {
    error,
    encoding: file.encoding,
    finishedAt: new Date().toISOString(),
    expiresAt: expiresAt(deps.limits.retentionDays),
  });
  if (finished) {
    endJobSpan(deps.tracing, finished, 'REJECTED', new Date(finished.finishedAt ?? Date.now()));
    await recordJobUsage(usageStoreOf(deps), finished);
    await deps.notifier?.jobFinished(finished, 'REJECTED', {
      total: 0,
      succeeded: 0,
      failed: 0,
      rejected: 0,
    });
  }
  jobLogger(job.site, job.token).warn('file rejected', { code: err.code, line: err.line });
  publishMetrics(deps.env.stage, { JobsRejected: 1, SplitDuration: Date.now() - started });
  return { state: 'REJECTED', error };
}

/**
 * A valid file goes to work, in an order that never strands it: its pieces joined into chunks (about
 * CHUNKS_PER_WORKER per worker); its plan and totals on the job item (before anything exists that the item must
 * name); its rejected records, its chunk plan (for retries), its queue and its chunks; RUNNING; then its workers. A launch that fails leaves
 * a RUNNING job whose chunks and totals are all recorded: the reaper launches its workers later (core/budget/launch.ts).
 * A split that dies anywhere before RUNNING is run again whole (same plan, same chunks; a chunk sent twice is
 * counted once).
 */
async function startWork(
  deps: Omit<SplitDeps, 'notifier' | 'usage'>,
  job: Job,
  file: ValidatedFile,
  started: number,
  requestedWorkers: number | undefined,
  /** The split's span: a finalize it asks for links to it. */
  traceparent: string | undefined,
): Promise<SplitResult> {
  const { site, token } = job;
  const log = jobLogger(site, token);
  const planned = await planWork(deps, job, file, requestedWorkers);
  const { workers } = planned;
  // Each chunk carries the job's context: every attempt at it is a span linked to the job span.
  const jobTrace = currentTraceparent(job);
  const chunks = jobTrace ? planned.chunks.map((c) => ({ ...c, traceparent: jobTrace })) : planned.chunks;
  const queueName = chunks.length > 0 ? reportQueueName(deps.env.stage, token) : undefined;
  const recorded = await deps.jobs.recordSplit(site, token, {
    header: file.header,
    delimiter: file.delimiter,
    encoding: file.encoding,
    queueName,
    workers,
    totalChunks: chunks.length,
    totalRecords: file.records,
    rejected: file.rejected.length,
    splitDoneAt: new Date().toISOString(),
  });
  if (!recorded) {
    log.info('split skipped: another split started this job');
    return { state: 'SKIPPED' };
  }
  if (file.rejected.length > 0) {
    await deps.objects.put(
      keys.rejected(site, token),
      file.rejected.map((r) => JSON.stringify(r)).join('\n') + '\n',
      'application/x-ndjson',
    );
  }
  if (queueName) {
    // The plan of byte ranges, kept for the job's retries: an attempt re-sends the chunks holding its records
    // (core/intake/rerun-failed.ts), so they are read from the same bytes with the same numbers and lines.
    await deps.objects.put(
      keys.chunkPlan(site, token),
      chunks.map((c) => JSON.stringify(c)).join('\n') + '\n',
      'application/x-ndjson',
    );
    await queueChunks(deps, site, token, queueName, chunks);
  }
  // With chunks, the job waits for workers from the stage's budget (QUEUED), and one granter pass runs now;
  // with none (every record rejected) it runs at once, and the split asks for the finalize itself.
  const next = await deps.jobs.transition(site, token, chunks.length > 0 ? 'QUEUED' : 'RUNNING', {
    ...(chunks.length > 0 ? { queuedAt: new Date().toISOString() } : { runningAt: new Date().toISOString() }),
  });
  if (!next) {
    log.info('split skipped: another split started this job');
    return { state: 'SKIPPED' };
  }
  // A job stopped (cancelled) while its split planned it asks for no workers: its finalize ends it at once.
  const wantsWorkers = chunks.length > 0 && !next.stop;
  if (!wantsWorkers) await requestFinalize(deps, { site, token, ...(traceparent ? { traceparent } : {}) });
  else await askForWorkers(deps, next);
  const pass = wantsWorkers ? await grantWorkers(deps, 'split') : undefined;
  const granted = pass?.granted.find((g) => g.site === site && g.token === token)?.count ?? 0;
  const refused = pass?.notLaunched.find((g) => g.site === site && g.token === token)?.count ?? 0;
  publishMetrics(deps.env.stage, {
    SplitDuration: Date.now() - started,
    RecordsRejected: file.rejected.length,
  });
  log.info('split done', {
    records: file.records,
    rejected: file.rejected.length,
    chunks: chunks.length,
    workers,
    granted,
    launchFailed: refused,
    ms: Date.now() - started,
    encoding: file.encoding,
  });
  return {
    state: granted - refused > 0 || chunks.length === 0 ? 'RUNNING' : 'QUEUED',
    records: file.records,
    chunks: chunks.length,
    workers,
    ...(refused > 0 ? { launchFailed: refused } : {}),
  };
}

/**
 * A valid file's plan: its workers (core/split/worker-count.ts) and its pieces joined into chunks (about
 * CHUNKS_PER_WORKER per worker, a slow processor's no larger than its cost allows).
 */
async function planWork(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'timings'>,
  job: JobToRead,
  file: Pick<Reading, 'records' | 'rejected' | 'pieces'>,
  requestedWorkers: number | undefined,
): Promise<{ workers: number; chunks: ChunkMessage[] }> {
  const valid = file.records - file.rejected.length;
  const workers = workerCount(valid, deps.limits, requestedWorkers);
  const byCost = await jobSizesByCost(deps, job);
  const chunks = mergeChunks(file.pieces, chunkLimits(deps.limits, byCost, valid, workers));
  return { workers, chunks };
}

/** What the split would find in a file and plan for it, found without doing any of it (see {@link checkFile}). */
export interface FileCheck {
  /** Undefined when the file was refused before its encoding was known. */
  readonly encoding?: DecodeInfo['encoding'];
  /** Empty when the file was refused before its header was read. */
  readonly header: readonly string[];
  readonly delimiter: string;
  /** Numbered records read (rejected ones included): all of them, or up to where the file was refused. */
  readonly records: number;
  readonly rejected: readonly RejectedRecord[];
  /** Columns the processor needs that the header lacks. */
  readonly missing: readonly string[];
  /** The first accepted records with their fields (as the workers will read them), at most `samples`. */
  readonly samples: readonly { n: number; line: number; fields: string[] }[];
  /** Why the split would reject the whole file, in the order it would find them (empty: it would run). */
  readonly problems: readonly FileRejectedError[];
  /** The workers the job would ask for and the chunks it would be cut into (of the records read). */
  readonly workers: number;
  readonly chunks: number;
}

/**
 * The split's whole-file validation of an upload (`body`), with no effect at all: no job item, object, queue or
 * worker, nothing counted (POST /jobs?check=true, core/intake/check.ts). The same decoder, scanner, header limits,
 * needs and chunk plan as {@link splitJob}; a header lacking what the processor needs is reported and the rest of
 * the file read on, so every problem shows at once. `job.token` only names the plan's pieces (never stored).
 */
export async function checkFile(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'timings'>,
  job: JobToRead,
  body: Buffer,
  o: { readonly workers?: number; readonly samples: number },
): Promise<FileCheck> {
  const info: DecodeInfo = {};
  const read = emptyReading();
  const problems: FileRejectedError[] = [];
  const refused = (err: unknown) => {
    if (!(err instanceof FileRejectedError)) throw err;
    return err;
  };
  const stopped = await readRecords(decodeToUtf8(oneBuffer(body), info), job, deps, read, {
    missing: 'report',
    samples: o.samples,
  }).then(() => undefined, refused);
  // In the order the split finds them: the header's needs, then what stopped the reading, then the header's size.
  if (read.missing.length > 0) problems.push(fieldsMissingError(job.processor, read.missing));
  if (stopped) problems.push(stopped);
  else {
    try {
      checkHeader(read.header, read.delimiter, deps.limits);
    } catch (err) {
      problems.push(refused(err));
    }
  }
  const plan = await planWork(deps, job, read, o.workers);
  return {
    encoding: info.encoding,
    header: read.header,
    delimiter: read.delimiter,
    records: read.records,
    rejected: read.rejected,
    missing: read.missing,
    samples: read.samples,
    problems,
    workers: plan.workers,
    chunks: plan.chunks.length,
  };
}

async function* oneBuffer(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}
