import { Chunker, mergeChunks, type ChunkMessage } from '../messages/chunk.ts';
import { readRecordBatches, type RejectedRecord } from '../source/csv.ts';
import { decodeToUtf8, type DecodeInfo } from '../source/decode.ts';
import { FileRejectedError } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { keys, reportQueueName } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { batchBodies } from '../aws/queues.ts';
import { expiresAt, type Job, type JobError } from '../jobs/store.ts';
import { recordJobUsage, usageStoreOf } from '../usage/store.ts';
import { Utf8SourceCopy } from './source-copy.ts';
import { workerCount } from './worker-count.ts';
import { loadProcessor } from '../work/processors/index.ts';
import { simulated, simulationOf } from '../work/processors/simulate.ts';
import { chunkRecordsByCost } from '../work/settings.ts';

/** The pieces the split cuts while validating (joined into chunks afterwards). */
const SUB_CHUNK_BYTES = 64 * 1024;
const SUB_CHUNK_RECORDS = 1000;
/** Enough chunks per worker that a slow or killed worker's share is picked up by the others. */
const CHUNKS_PER_WORKER = 4;

export interface SplitResult {
  readonly state: 'RUNNING' | 'REJECTED' | 'SKIPPED';
  readonly error?: JobError;
  readonly records?: number;
  readonly chunks?: number;
  readonly workers?: number;
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

/**
 * Splits a received job: validates the whole file first, so a rejected file never gets a queue or a worker;
 * then puts the job to work.
 */
export async function splitJob(
  deps: PipelineDeps,
  site: string,
  token: string,
  opts: { workers?: number } = {},
): Promise<SplitResult> {
  const job = await deps.jobs.get(site, token);
  if (!job || job.state !== 'RECEIVED') {
    jobLogger(site, token).info('split skipped: job is not waiting to be split', { state: job?.state });
    return { state: 'SKIPPED' };
  }
  const started = Date.now();
  const file = await validateWholeFile(deps, job);
  if ('rejection' in file) return rejectFile(deps, job, file, started);
  return startWork(deps, job, file, started, opts.workers);
}

/**
 * Reads the whole upload once: decodes it (BOM / UTF-8 / CP932 / UTF-16), checks every record, and cuts the
 * UTF-8 source into byte ranges as the records go by. A CP932 or UTF-16 upload is transcoded to a UTF-8 copy
 * during the same pass. File-level problems come back as a rejection; anything else (storage down) throws.
 */
async function validateWholeFile(deps: PipelineDeps, job: Job): Promise<ValidatedFile | RejectedFile> {
  const info: DecodeInfo = {};
  const copy = new Utf8SourceCopy(deps.objects, job.site, job.token, info);
  try {
    const utf8 = decodeToUtf8(await deps.objects.stream(job.sourceKey), info);
    const read = await cutIntoPieces(copy.tee(utf8), job, deps);
    // The key and the BOM shift are known once the whole file is read (the encoding may be open until then).
    const { key, shift } = await copy.finish(job.sourceKey);
    const pieces = read.pieces.map((p) => ({ ...p, key, start: p.start + shift, end: p.end + shift }));
    return { ...read, pieces, encoding: info.encoding };
  } catch (err) {
    await copy.abort();
    if (err instanceof FileRejectedError) return { rejection: err, encoding: info.encoding };
    throw err;
  }
}

/** Parses the UTF-8 stream strictly and groups its records into fine pieces (keys and offsets set later). */
async function cutIntoPieces(
  utf8: AsyncIterable<Buffer>,
  job: Job,
  deps: PipelineDeps,
): Promise<Omit<ValidatedFile, 'encoding'>> {
  const pieces: ChunkMessage[] = [];
  const rejected: RejectedRecord[] = [];
  let header: string[] = [];
  let delimiter = ',';
  let records = 0;
  let chunker: Chunker | undefined;
  const byCost = await chunkSizeByCost(deps, job);
  for await (const batch of readRecordBatches(utf8, { maxRecordBytes: deps.limits.maxRecordBytes })) {
    for (const ev of batch) {
      if (ev.kind === 'header') {
        header = ev.header;
        delimiter = ev.delimiter;
        chunker = new Chunker(job.site, job.token, '', ev, {
          maxBytes: Math.min(SUB_CHUNK_BYTES, deps.limits.chunkMaxBytes),
          maxRecords: Math.min(SUB_CHUNK_RECORDS, deps.limits.chunkMaxRecords, byCost?.piece ?? Infinity),
        });
        continue;
      }
      records = ev.n;
      if (ev.kind === 'rejected')
        rejected.push({ n: ev.n, line: ev.line, code: ev.code, message: ev.message, raw: ev.raw });
      const full = chunker!.add(ev);
      if (full) pieces.push(full);
    }
  }
  const last = chunker?.flush();
  if (last) pieces.push(last);
  return { header, delimiter, records, rejected, pieces };
}

/** A rejected file: the job ends REJECTED (counted in the usage, announced), with no queue and no worker. */
async function rejectFile(
  deps: PipelineDeps,
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
 * A valid file goes to work: its pieces joined into chunks (about CHUNKS_PER_WORKER per worker), its queue,
 * its rejected records, the RUNNING state, its workers, its chunks on the queue, and the split's totals (the
 * split asks for the finalize itself if the workers already counted every chunk).
 */
async function startWork(
  deps: PipelineDeps,
  job: Job,
  file: ValidatedFile,
  started: number,
  requestedWorkers: number | undefined,
): Promise<SplitResult> {
  const { site, token } = job;
  const log = jobLogger(site, token);
  const valid = file.records - file.rejected.length;
  const workers = workerCount(valid, deps.limits, requestedWorkers);
  const byCost = await chunkSizeByCost(deps, job);
  const chunks = mergeChunks(file.pieces, {
    targetRecords: Math.max(1, Math.ceil(valid / Math.max(1, workers * CHUNKS_PER_WORKER))),
    maxBytes: deps.limits.chunkMaxBytes,
    maxRecords: Math.min(deps.limits.chunkMaxRecords, byCost?.chunk ?? Infinity),
  });
  const queueName = reportQueueName(deps.env.stage, token);
  const queueUrl =
    chunks.length > 0
      ? await deps.queues.createJobQueue({
          name: queueName,
          site,
          token,
          dlqArn: deps.env.dlqArn,
          timings: deps.timings,
        })
      : undefined;
  if (file.rejected.length > 0) {
    await deps.objects.put(
      keys.rejected(site, token),
      file.rejected.map((r) => JSON.stringify(r)).join('\n') + '\n',
      'application/x-ndjson',
    );
  }
  const running: Partial<Job> = {
    header: file.header,
    delimiter: file.delimiter,
    encoding: file.encoding,
    queueName: queueUrl ? queueName : undefined,
    workers,
    splitStartedAt: new Date(started).toISOString(),
    runningAt: new Date().toISOString(),
  };
  if (!(await deps.jobs.transition(site, token, 'RUNNING', running))) {
    log.info('split skipped: another split started this job');
    return { state: 'SKIPPED' };
  }
  if (workers > 0) await deps.launcher.launch({ site, token, count: workers });
  if (queueUrl) {
    await Promise.all(
      batchBodies(chunks.map((c) => JSON.stringify(c))).map((b) =>
        deps.queues.sendBatch(queueUrl, site, token, b),
      ),
    );
  }
  const complete = await deps.jobs.completeSplit(site, token, {
    totalChunks: chunks.length,
    totalRecords: file.records,
    rejected: file.rejected.length,
    splitDoneAt: new Date().toISOString(),
  });
  if (complete) await requestFinalize(deps, { site, token });
  publishMetrics(deps.env.stage, {
    SplitDuration: Date.now() - started,
    RecordsRejected: file.rejected.length,
    WorkersLaunched: workers,
  });
  log.info('split done', {
    records: file.records,
    rejected: file.rejected.length,
    chunks: chunks.length,
    workers,
    ms: Date.now() - started,
    encoding: file.encoding,
  });
  return { state: 'RUNNING', records: file.records, chunks: chunks.length, workers };
}

/** A slow processor's chunk sizes (core/work/settings.ts), with the job's simulated delay counted in. */
async function chunkSizeByCost(deps: PipelineDeps, job: Job) {
  const sim = simulationOf(job.options);
  const processor = await loadProcessor(job.processor);
  const stage = { name: deps.env.stage, limits: deps.limits, timings: deps.timings };
  return chunkRecordsByCost(
    sim ? simulated(processor, sim) : processor,
    job.options,
    stage,
    CHUNKS_PER_WORKER,
  );
}
