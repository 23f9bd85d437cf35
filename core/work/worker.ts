import { setTimeout as sleep } from 'node:timers/promises';
import type { Message } from '@aws-sdk/client-sqs';
import { decodeChunk, type ChunkMessage } from '../messages/chunk.ts';
import { recordToRaw } from '../source/csv.ts';
import { readRange } from '../source/scan.ts';
import type { Objects } from '../aws/objects.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { keys } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { getProcessor, type RowProcessor } from './processors/index.ts';
import { simulated, simulationOf } from './processors/simulate.ts';
import { encodePart, type PartMeta, type RecordFailure } from '../messages/part.ts';
import { dosDateTime, LocalEntries } from '../finalize/zip.ts';
import type { Job } from '../jobs/store.ts';

export interface ProcessedChunk {
  readonly part: Buffer;
  readonly succeeded: number;
  readonly failed: number;
}

/** Reads a chunk's records from its byte range of the source (same parser and rules as the split). */
export async function chunkRecords(
  job: Job,
  msg: ChunkMessage,
  objects: Objects,
  maxRecordBytes: number,
): Promise<[number, number, string[]][]> {
  const bytes =
    msg.end > msg.start
      ? await objects.bytes(msg.key, { start: msg.start, end: msg.end - 1 })
      : Buffer.alloc(0);
  const events = readRange(bytes, {
    header: job.header ?? [],
    delimiter: job.delimiter ?? ',',
    n: msg.n,
    line: msg.line,
    maxRecordBytes,
  });
  const numbered = events.filter((e) => e.kind !== 'header');
  if (numbered.length !== msg.records || numbered[0]?.n !== msg.n) {
    throw new Error(
      `chunk ${msg.chunk}: expected ${msg.records} records from ${msg.n}, read ${numbered.length} from ${numbered[0]?.n}`,
    );
  }
  // Rejected records were reported by the split; only the accepted ones are processed.
  return events.flatMap((e) =>
    e.kind === 'record' ? [[e.n, e.line, e.fields] as [number, number, string[]]] : [],
  );
}

/**
 * Chunks a worker takes per receive (and works on at once): two overlap one chunk's I/O with the other's CPU,
 * while the rest stay on the queue for the other workers (and are not at stake if this one dies).
 */
const CHUNKS_PER_RECEIVE = 2;

/**
 * Attempts at a chunk before it counts as a poison chunk: its records are then recorded as failed with the
 * last error (the job ends PARTIAL, not stuck). Below the queues' redrive count (5), so the DLQ only gets
 * what even that could not settle.
 */
export const MAX_CHUNK_ATTEMPTS = 3;

/** The part of a chunk given up on: every record it holds (rejected ones excepted) failed with `error`. */
export async function failedChunk(
  deps: PipelineDeps,
  job: Job,
  msg: ChunkMessage,
  error: string,
): Promise<ProcessedChunk> {
  let failures: RecordFailure[];
  try {
    const rows = await chunkRecords(job, msg, deps.objects, deps.limits.maxRecordBytes);
    failures = rows.map(([n, line, fields]) => ({
      n,
      line,
      code: 'CHUNK_FAILED',
      message: error,
      raw: recordToRaw(fields, job.delimiter),
    }));
  } catch {
    // The range itself cannot be read: the numbers are known, the lines only for the first record.
    const rejected = new Set<number>();
    if (job.rejected) {
      const text = (await deps.objects.bytes(keys.rejected(job.site, job.token))).toString('utf8');
      for (const l of text.split('\n')) if (l) rejected.add((JSON.parse(l) as { n: number }).n);
    }
    failures = [];
    for (let n = msg.n; n < msg.n + msg.records; n++) {
      if (!rejected.has(n))
        failures.push({ n, line: n === msg.n ? msg.line : 0, code: 'CHUNK_FAILED', message: error, raw: '' });
    }
  }
  const meta: PartMeta = {
    v: 3,
    site: job.site,
    token: job.token,
    chunk: msg.chunk,
    succeeded: 0,
    failed: failures.length,
    entries: 0,
    failures,
  };
  return { part: encodePart(meta, Buffer.alloc(0)), succeeded: 0, failed: failures.length };
}

/** A record the processor fails on is tried this many times (with a short backoff) before it counts as failed. */
export const RECORD_ATTEMPTS = 3;
const RECORD_RETRY_BASE_MS = 10;

/** Runs the processor over one chunk's records and builds its part object (zip entries, counts, failures). */
export async function processChunk(
  job: Job,
  msg: ChunkMessage,
  records: readonly [number, number, string[]][],
  processor: RowProcessor,
): Promise<ProcessedChunk> {
  const ctx = { site: job.site, token: job.token, header: job.header ?? [] };
  const stamp = dosDateTime(new Date(job.receivedAt));
  const entries = new LocalEntries(stamp);
  const failures: RecordFailure[] = [];
  let succeeded = 0;
  for (const [n, line, fields] of records) {
    for (let attempt = 1; ; attempt++) {
      try {
        // Await only what is a promise: a microtask per record is measurable at a million records.
        const result = processor.process({ n, line, fields }, ctx);
        const outputs = result instanceof Promise ? await result : result;
        for (const o of outputs) entries.add(o.name, o.data);
        succeeded++;
        break;
      } catch (err) {
        if (attempt < RECORD_ATTEMPTS) {
          await sleep(RECORD_RETRY_BASE_MS * 2 ** (attempt - 1));
          continue;
        }
        failures.push({
          n,
          line,
          code: 'PROCESSING_FAILED',
          message: errorMessage(err),
          raw: recordToRaw(fields, job.delimiter),
        });
        break;
      }
    }
  }
  const meta: PartMeta = {
    v: 3,
    site: job.site,
    token: job.token,
    chunk: msg.chunk,
    succeeded,
    failed: failures.length,
    entries: entries.count,
    failures,
  };
  return { part: encodePart(meta, entries.bytes()), succeeded, failed: failures.length };
}

export interface WorkerOptions {
  readonly site: string;
  readonly token: string;
  /** Long-poll wait per receive (20 on AWS). */
  readonly waitSeconds: number;
  /** Empty receives in a row, once the split is done, before the worker exits. */
  readonly idlePolls: number;
  readonly visibilitySeconds: number;
  /** Stops the loop from outside (SIGTERM). */
  readonly signal?: AbortSignal;
}

export interface WorkerSummary {
  readonly chunks: number;
  readonly duplicates: number;
  readonly records: number;
  readonly reason: 'idle' | 'job-finished' | 'stopped' | 'no-job';
}

/**
 * The row worker: long-polls the job's queue, processes chunks, writes each chunk's part under a
 * deterministic key, counts it once, then deletes the message. The worker whose count completes the
 * job asks for the finalize. Visibility is extended while a chunk is being worked on.
 */
export async function runWorker(deps: PipelineDeps, o: WorkerOptions): Promise<WorkerSummary> {
  const log = jobLogger(o.site, o.token);
  const job = await deps.jobs.get(o.site, o.token);
  const queueUrl = job?.queueName ? await deps.queues.queueUrl(job.queueName) : undefined;
  if (!job || !queueUrl || job.state !== 'RUNNING') {
    log.info('worker: nothing to do', { state: job?.state });
    return { chunks: 0, duplicates: 0, records: 0, reason: job ? 'job-finished' : 'no-job' };
  }
  const processor = getProcessor(job.processor);
  let chunks = 0;
  let duplicates = 0;
  let records = 0;
  let idle = 0;
  let idleSince = Date.now();

  const handle = async (m: Message): Promise<void> => {
    const heartbeat = setInterval(
      () => {
        deps.queues
          .extendVisibility(queueUrl, m.ReceiptHandle!, o.visibilitySeconds)
          .catch((err: unknown) => log.warn('heartbeat failed', { error: errorMessage(err) }));
      },
      Math.max(1000, (o.visibilitySeconds * 1000) / 3),
    );
    const attempt = Number(m.Attributes?.ApproximateReceiveCount ?? '1');
    let msg: ChunkMessage | undefined;
    try {
      msg = decodeChunk(m.Body ?? '');
      if (msg.site !== o.site || msg.token !== o.token) {
        // Never process another tenant's or job's data; leave it to the DLQ and say so.
        log.error('foreign message on job queue', { messageSite: msg.site, messageToken: msg.token });
        return;
      }
      const t0 = Date.now();
      let done: ProcessedChunk;
      const giveUp = attempt > MAX_CHUNK_ATTEMPTS;
      if (giveUp) {
        // The attempts before this one crashed their worker (they never reached the catch below).
        done = await failedChunk(
          deps,
          job,
          msg,
          `gave up after ${MAX_CHUNK_ATTEMPTS} attempts that ended their worker`,
        );
      } else {
        const rows = await chunkRecords(job, msg, deps.objects, deps.limits.maxRecordBytes);
        const sim = simulationOf(job.options);
        done = await processChunk(job, msg, rows, sim ? simulated(processor, sim) : processor);
      }
      await settle(m, msg, done, t0, giveUp);
    } catch (err) {
      if (!msg || msg.site !== o.site || msg.token !== o.token) {
        log.error('undecodable message on job queue; left for the DLQ', { error: errorMessage(err) });
        return;
      }
      const error = errorMessage(err);
      if (attempt < MAX_CHUNK_ATTEMPTS) {
        // Released with a short backoff; another attempt (here or in another worker) follows.
        log.warn('chunk failed; it will be retried', { chunk: msg.chunk, attempt, error });
        await deps.queues.extendVisibility(
          queueUrl,
          m.ReceiptHandle!,
          Math.min(o.visibilitySeconds, 2 * attempt),
        );
        return;
      }
      // A poison chunk: its records are recorded as failed with the last error, so the job ends PARTIAL.
      log.error('chunk failed on its last attempt; its records are recorded as failed', {
        chunk: msg.chunk,
        attempt,
        error,
      });
      await settle(m, msg, await failedChunk(deps, job, msg, error), Date.now(), true);
    } finally {
      clearInterval(heartbeat);
    }
  };

  /** Stores a chunk's part, counts it once, asks for the finalize if it was the last, deletes the message. */
  const settle = async (
    m: Message,
    msg: ChunkMessage,
    done: ProcessedChunk,
    t0: number,
    giveUp = false,
  ): Promise<void> => {
    // A give-up must never replace the part of a chunk an earlier attempt stored and counted (its answer
    // may have been lost on the way back): then the chunk is done and only its message is left.
    if (giveUp && (await deps.jobs.isChunkCounted(o.site, o.token, msg.chunk))) {
      duplicates++;
      await deps.queues.delete(queueUrl, m.ReceiptHandle!);
      return;
    }
    // A give-up stores its part under its own key, so it can never replace a processed chunk's part; the
    // count (exactly once) records which of the two the finalize reads.
    const key = giveUp ? keys.gaveUpPart(o.site, o.token, msg.chunk) : keys.part(o.site, o.token, msg.chunk);
    await deps.objects.put(key, done.part);
    const counted = await deps.jobs.countChunk(o.site, o.token, msg.chunk, done, giveUp);
    if (counted.counted) {
      chunks++;
      records += done.succeeded + done.failed;
      publishMetrics(deps.env.stage, {
        ChunksProcessed: 1,
        RecordsProcessed: done.succeeded,
        RecordsFailed: done.failed,
        ChunkLatency: Date.now() - t0,
      });
    } else duplicates++;
    if (counted.complete) await requestFinalize(deps, { site: o.site, token: o.token });
    await deps.queues.delete(queueUrl, m.ReceiptHandle!);
  };

  while (!o.signal?.aborted) {
    const messages = await deps.queues.receive(queueUrl, {
      max: CHUNKS_PER_RECEIVE,
      waitSeconds: o.waitSeconds,
      visibilitySeconds: o.visibilitySeconds,
      signal: o.signal,
    });
    if (o.signal?.aborted && messages.length === 0) break;
    if (messages.length > 0) {
      idle = 0;
      // A chunk whose settling failed (storage down) stays on the queue; the worker goes on.
      for (const r of await Promise.allSettled(messages.map(handle))) {
        if (r.status === 'rejected')
          log.error('chunk not settled; it will come back', { error: errorMessage(r.reason) });
      }
      continue;
    }
    const now = await deps.jobs.get(o.site, o.token, false);
    if (!now || now.state !== 'RUNNING') return { chunks, duplicates, records, reason: 'job-finished' };
    // Idle: every chunk is counted (the finalize is coming), or nothing came back for longer than a
    // visibility timeout (by then the chunks of a worker that died are visible again and would have come).
    if (idle === 0) idleSince = Date.now();
    idle++;
    const allCounted = now.totalChunks !== undefined && now.chunksDone >= now.totalChunks;
    const waitedOut = Date.now() - idleSince > (o.visibilitySeconds + 2 * o.waitSeconds) * 1000;
    if (now.totalChunks !== undefined && ((allCounted && idle >= o.idlePolls) || waitedOut)) {
      return { chunks, duplicates, records, reason: 'idle' };
    }
    if (o.waitSeconds === 0) await sleep(200);
  }
  return { chunks, duplicates, records, reason: 'stopped' };
}
