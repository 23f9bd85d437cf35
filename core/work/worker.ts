import { setTimeout as sleep } from 'node:timers/promises';
import type { Message } from '@aws-sdk/client-sqs';
import { attemptOf, decodeChunk, type ChunkMessage } from '../messages/chunk.ts';
import { readPartMeta } from '../messages/part.ts';
import { BadRequestError, errorMessage, SourceChangedError } from '../shared/errors.ts';
import { jobLogger, type Log } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { keys } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { getStage } from '../../config/index.ts';
import { loadProcessor, type RowProcessor } from '../processors/index.ts';
import { simulated, simulationOf } from '../processors/simulate.ts';
import type { Job } from '../jobs/store.ts';
import { requestGrantPass } from '../budget/grant-workers.ts';
import { chunkRecords, splitRejected } from './chunk-records.ts';
import type { RejectedRecord } from '../source/csv.ts';
import { failedChunk, PartSizes, type ProcessedChunk } from './chunk-part.ts';
import { ChunkStoppedError, processChunk, type ChunkRun } from './process-chunk.ts';
import { EffectClaims } from '../effects/claims.ts';
import { RateLimiter } from './rate-limiter.ts';
import { RecordSlots } from './slots.ts';
import { limiterName, ratePerSecond, recordConcurrency } from '../processors/settings.ts';
import { CHUNKS_IN_HAND } from '../chunking/size.ts';
import { leaveStoppedJob, stopJob, stopOnFailureRate } from '../stop/stop.ts';
import { isMissingQueue } from '../aws/queues.ts';
import {
  ATTR,
  currentTraceparent,
  jobAttrs,
  NO_SPAN,
  SpanKind,
  startSpan,
  traceparentOf,
  type ChunkOutcome,
  type Span,
  type SpanContext,
} from '../shared/trace.ts';

/**
 * Attempts at a chunk before it counts as a poison chunk: its records are then recorded as failed with the
 * last error (the job ends PARTIAL, not stuck). Below the queues' redrive count (timings.maxReceiveCount), so
 * the DLQ only gets what even that could not settle.
 */
export const MAX_CHUNK_ATTEMPTS = 3;

export interface WorkerOptions {
  readonly site: string;
  readonly token: string;
  /** Long-poll wait per receive. @default the stage's `workerWaitSeconds` */
  readonly waitSeconds?: number;
  /** Empty receives in a row, once the split is done, before the worker exits. @default `workerIdlePolls` */
  readonly idlePolls?: number;
  /** @default the stage's `chunkVisibilitySeconds` */
  readonly visibilitySeconds?: number;
  /** Stops the loop from outside (SIGTERM): the chunks in hand are finished first. */
  readonly signal?: AbortSignal;
  /**
   * Aborts the records in flight (a stop that cannot wait any longer): their chunks go back to the queue and the
   * worker takes no more.
   */
  readonly abortRecords?: AbortSignal;
  /** This worker's id in its job's trace (its lane in the timeline). @default `pid-<process id>` */
  readonly workerId?: string;
}

export interface WorkerSummary {
  readonly chunks: number;
  readonly duplicates: number;
  readonly records: number;
  /** `shed`: the job's share of the budget shrank; `unheld`: the job holds no place (ended, or reclaimed). */
  readonly reason: 'idle' | 'job-finished' | 'stopped' | 'no-job' | 'shed' | 'unheld';
  /** Records in flight at once: the bound, and the most there were. */
  readonly concurrency?: { readonly bound: number; readonly peak: number };
  /** DynamoDB requests of the side-effect claims and of the rate limiter (processors that have them). */
  readonly claims?: { readonly writes: number; readonly reads: number };
  readonly limiter?: { readonly writes: number; readonly granted: number };
}

/** One worker's view of its job while it runs, and its tally. */
interface Worker {
  readonly deps: WorkerDeps;
  readonly job: Job;
  readonly queueUrl: string;
  readonly processor: RowProcessor;
  /** Shared by the chunks the worker holds: slots, claims, limiter, stop. */
  readonly run: ChunkRun & {
    readonly slots: RecordSlots;
    readonly claims?: EffectClaims;
    readonly limiter?: RateLimiter;
  };
  readonly visibilitySeconds: number;
  readonly log: Log;
  readonly tally: { chunks: number; duplicates: number; records: number };
  /** The split's rejected record numbers, read once (only when it rejected any). */
  rejected?: Promise<ReadonlySet<number>>;
  readonly workerId: string;
  /** The worker's start span: each chunk attempt's span is its child (and links to the job's span). */
  readonly lane: SpanContext;
}

/** What a worker uses of the pipeline's dependencies (fargate-worker/main.ts and the local runtime pass the bag). */
export type WorkerDeps = Pick<
  PipelineDeps,
  'env' | 'grants' | 'jobs' | 'limits' | 'objects' | 'queues' | 'timings' | 'tracing'
>;

/**
 * The row worker: long-polls the job's queue, processes chunks, writes each chunk's part under a
 * deterministic key, counts it once, then deletes the message. The worker whose count completes the
 * job asks for the finalize. Visibility is extended while a chunk is being worked on.
 */
export async function runWorker(deps: WorkerDeps, options: WorkerOptions): Promise<WorkerSummary> {
  const o = {
    waitSeconds: deps.timings.workerWaitSeconds,
    idlePolls: deps.timings.workerIdlePolls,
    visibilitySeconds: deps.timings.chunkVisibilitySeconds,
    ...options,
  };
  const log = jobLogger(o.site, o.token);
  const job = await deps.jobs.get(o.site, o.token);
  const queueUrl = job?.queueName ? await deps.queues.queueUrl(job.queueName) : undefined;
  if (!job || !queueUrl || job.state !== 'RUNNING' || (await leaveStoppedJob(deps, job))) {
    log.info('worker: nothing to do', { state: job?.state, stop: job?.stop?.reason });
    return { chunks: 0, duplicates: 0, records: 0, reason: job ? 'job-finished' : 'no-job' };
  }
  let processor: RowProcessor;
  try {
    processor = await loadProcessor(job.processor);
  } catch (err) {
    if (!(err instanceof BadRequestError)) throw err;
    // The job's processor does not load here (PROCESSOR_BROKEN, or its file is gone): the job fails with that code
    // and every record listed, instead of workers dying and being started again, the job never moving.
    log.error("worker: the job's processor does not load; failing the job", { code: err.code, error: err });
    await stopJob(deps, job.site, job.token, 'PROCESSOR_BROKEN', err.message);
    await leaveBudget({ deps, job, log }, 'stopped');
    return { chunks: 0, duplicates: 0, records: 0, reason: 'stopped' };
  }
  const rate = ratePerSecond(processor, getStage(deps.env.stage));
  const workerId = o.workerId ?? `pid-${process.pid}`;
  // From the process's start to the processor loaded, before the first receive: what a worker costs to start.
  const started = startSpan(
    deps.tracing,
    'rowfleet.worker.start',
    currentTraceparent(job),
    jobAttrs(job, { [ATTR.workerId]: workerId, 'rowfleet.processor': job.processor }),
    { startTime: performance.timeOrigin },
  );
  started.end();
  const w: Worker = {
    deps,
    job,
    queueUrl,
    processor,
    run: {
      slots: new RecordSlots(recordConcurrency(processor, job.options, deps.limits)),
      ...(processor.sideEffects
        ? { claims: new EffectClaims(deps.env.table, deps.limits.retentionDays) }
        : {}),
      ...(rate !== undefined
        ? { limiter: new RateLimiter(deps.env.table, limiterName(processor), rate) }
        : {}),
      signal: o.abortRecords,
      sizes: new PartSizes(),
    },
    visibilitySeconds: o.visibilitySeconds,
    log,
    tally: { chunks: 0, duplicates: 0, records: 0 },
    workerId,
    lane: started.spanContext(),
  };
  const summary = (reason: WorkerSummary['reason']): WorkerSummary => ({
    ...w.tally,
    reason,
    concurrency: { bound: w.run.slots.size, peak: w.run.slots.peak },
    ...(w.run.claims ? { claims: { ...w.run.claims.stats } } : {}),
    ...(w.run.limiter ? { limiter: { ...w.run.limiter.stats } } : {}),
  });
  const reason = await workThrough(w, o);
  await leaveBudget(w, reason);
  return summary(reason);
}

/** Most chunks a worker holds at all, those whose records have all started but are not settled yet included. */
const MAX_CHUNKS_HELD = 2 * CHUNKS_IN_HAND;

/** How often a worker asks the budget whether its job's share shrank (at most, between chunks). */
const BUDGET_CHECK_MS = 2000;

/** The worker's loop over its job's queue; the reason it ended. */
async function workThrough(
  w: Worker,
  o: Required<Pick<WorkerOptions, 'waitSeconds' | 'idlePolls' | 'visibilitySeconds'>> & WorkerOptions,
): Promise<WorkerSummary['reason']> {
  const { deps, queueUrl, log } = w;
  let idle = 0;
  let idleSince = Date.now();
  let checkedBudget = Date.now();
  // Chunks in hand, worked on at once, until settled. A chunk makes room for the next as soon as its last record
  // has started (`starting` below), not when it is settled: the next one is received and read while the chunk's
  // last records run and its part is written, so the slots do not stand idle between chunks. A worker with free
  // slots pulls work, so chunks spread over the workers as they free up.
  const inHand = new Set<Promise<void>>();
  /** Chunks of which some record has not started yet: at most CHUNKS_IN_HAND. */
  const starting = new Set<Promise<void>>();
  const hold = (m: Message) => {
    let started!: () => void;
    const s: Promise<void> = new Promise<void>((r) => (started = r)).finally(() => starting.delete(s));
    starting.add(s);
    const p: Promise<void> = handleMessage(w, m, started)
      // A chunk whose settling failed (storage down) stays on the queue; the worker goes on.
      .catch((error: unknown) => log.error('chunk not settled; it will come back', { error: error as Error }))
      .finally(() => {
        started();
        inHand.delete(p);
      });
    inHand.add(p);
  };
  try {
    while (!o.signal?.aborted && !o.abortRecords?.aborted) {
      // Bounded twice: by the chunks still starting records, and (chunks ending slowly: a part write that hangs)
      // by all the chunks in hand.
      if (starting.size >= CHUNKS_IN_HAND || inHand.size >= MAX_CHUNKS_HELD) {
        await Promise.race(starting.size >= CHUNKS_IN_HAND ? starting : inHand);
        continue;
      }
      // Room for another chunk: first, does the job still have this worker's place? When its share shrank
      // (other sites' jobs arrived), it finishes the chunks in hand, then gives its place back and leaves —
      // unless another worker of the job left first (the decrement is conditional): then it goes on.
      if (Date.now() - checkedBudget >= BUDGET_CHECK_MS) {
        checkedBudget = Date.now();
        if ((await deps.grants.leaveDue(o.site, o.token)) !== 'stay') {
          await Promise.all(inHand);
          const decision = await deps.grants.shouldLeave(o.site, o.token);
          if (decision !== 'stay') {
            log.info('worker leaving: its job holds no place for it', { decision });
            return decision === 'leave' ? 'shed' : 'unheld';
          }
        }
      }
      const messages = await deps.queues
        .receive(queueUrl, {
          max: 1,
          waitSeconds: o.waitSeconds,
          visibilitySeconds: o.visibilitySeconds,
          signal: o.signal,
        })
        // The finalize deleted the queue: the job ended (or stopped early) and there is nothing left to take.
        .catch((err: unknown) => (isMissingQueue(err) ? undefined : Promise.reject(err)));
      if (!messages) return 'job-finished';
      if (messages.length > 0) {
        idle = 0;
        messages.forEach(hold);
        continue;
      }
      if (o.signal?.aborted) break;
      if (inHand.size > 0) {
        // Nothing new, but work in hand: not idle. Asked again once a chunk in hand has moved on.
        await Promise.race(starting.size > 0 ? starting : inHand);
        continue;
      }
      const now = await deps.jobs.get(o.site, o.token, false);
      if (!now || now.state !== 'RUNNING' || now.stop) return 'job-finished';
      if (idle === 0) idleSince = Date.now();
      idle++;
      if (idleEnough(now, { idle, idleMs: Date.now() - idleSince }, o)) return 'idle';
      if (o.waitSeconds === 0) await sleep(200);
    }
  } finally {
    // Stopping (SIGTERM) or leaving: the chunks in hand are finished first.
    await Promise.all(inHand);
  }
  return 'stopped';
}

/**
 * A worker gone: its place goes back to the stage's budget (unless the budget took it already: shed, unheld),
 * and a granter pass is asked for, so a queued job gets the place now rather than at the reaper's next pass.
 */
async function leaveBudget(
  w: Pick<Worker, 'deps' | 'job' | 'log'>,
  reason: WorkerSummary['reason'],
): Promise<void> {
  const { deps, job, log } = w;
  try {
    if (reason !== 'shed' && reason !== 'unheld') await deps.grants.release(job.site, job.token);
    await requestGrantPass(deps);
  } catch (err) {
    // The reaper's reconciliation gives the place back when this one could not.
    log.warn('could not give the worker place back; the reaper will', { error: err as Error });
  }
}

/**
 * When an idle worker leaves its running job: every chunk is counted (the finalize is coming) and the last
 * `idlePolls` receives came back empty; or nothing came back for longer than a visibility timeout (by then the
 * chunks of a worker that died are visible again and would have come). Never before the split is done.
 */
export function idleEnough(
  job: Pick<Job, 'totalChunks' | 'chunksDone'>,
  idle: { readonly idle: number; readonly idleMs: number },
  o: { readonly idlePolls: number; readonly visibilitySeconds: number; readonly waitSeconds: number },
): boolean {
  if (job.totalChunks === undefined) return false;
  const allCounted = job.chunksDone >= job.totalChunks;
  const waitedOut = idle.idleMs > (o.visibilitySeconds + 2 * o.waitSeconds) * 1000;
  return (allCounted && idle.idle >= o.idlePolls) || waitedOut;
}

/**
 * Whether a chunk message belongs to this worker's site, job and attempt: another tenant's data is never
 * processed, and a message of another attempt of the job is never run by this one.
 */
export function isOwnChunk(
  msg: Pick<ChunkMessage, 'site' | 'token' | 'attempt'>,
  job: Pick<Job, 'site' | 'token' | 'attempt'>,
) {
  return msg.site === job.site && msg.token === job.token && attemptOf(msg) === (job.attempt ?? 1);
}

/**
 * Works on one received chunk: keeps it invisible while busy (heartbeat), processes its records — or, past
 * MAX_CHUNK_ATTEMPTS, gives it up — and settles it. A failed attempt is released with a short backoff; the
 * last failure records the chunk's records as failed (a poison chunk), so the job ends PARTIAL, never stuck.
 */
async function handleMessage(w: Worker, m: Message, started: () => void): Promise<void> {
  const { deps, job, log } = w;
  const heartbeat = setInterval(
    () => {
      deps.queues
        .extendVisibility(w.queueUrl, m.ReceiptHandle!, w.visibilitySeconds)
        .catch((err: unknown) => log.warn('heartbeat failed', { error: err as Error }));
    },
    Math.max(1000, (w.visibilitySeconds * 1000) / 3),
  );
  const attempt = Number(m.Attributes?.ApproximateReceiveCount ?? '1');
  const received = Date.now();
  let msg: ChunkMessage | undefined;
  // One span per attempt at a chunk (never per record): a child of the worker's lane, linked to the job's span.
  let span: Span = NO_SPAN;
  const ended = (outcome: ChunkOutcome) => span.setAttribute(ATTR.outcome, outcome);
  try {
    msg = decodeChunk(m.Body ?? '');
    if (!isOwnChunk(msg, job)) {
      // Never process another tenant's or job's data; leave it to the DLQ and say so.
      log.error('foreign message on job queue', {
        messageSite: msg.site,
        messageToken: msg.token,
        messageAttempt: attemptOf(msg),
      });
      return;
    }
    span = startSpan(
      deps.tracing,
      'rowfleet.chunk',
      w.lane,
      jobAttrs(job, {
        [ATTR.chunk]: msg.chunk,
        [ATTR.records]: msg.records,
        [ATTR.workerId]: w.workerId,
        [ATTR.receiveCount]: attempt,
      }),
      {
        kind: SpanKind.CONSUMER,
        startTime: received,
        links: [msg.traceparent ?? currentTraceparent(job)],
      },
    );
    const t0 = Date.now();
    if (attempt > MAX_CHUNK_ATTEMPTS) {
      // The attempts before this one crashed their worker (they never reached the catch below).
      const reason = `gave up after ${MAX_CHUNK_ATTEMPTS} attempts that ended their worker`;
      const given = await failedChunk(deps, job, msg, reason, 'CHUNK_FAILED', w.run.claims);
      await settleChunk(w, m, msg, given, t0, true, span);
      return;
    }
    w.rejected ??= splitRejected(job, deps.objects);
    const rejected: RejectedRecord[] = [];
    const rows = await chunkRecords(
      job,
      msg,
      deps.objects,
      deps.limits.maxRecordBytes,
      await w.rejected,
      rejected,
    );
    const sim = simulationOf(job.options);
    const processor = sim ? simulated(w.processor, sim) : w.processor;
    const done = await processChunk(job, msg, rows, processor, w.run, started, rejected);
    if (done.succeeded + done.failed !== rows.length) {
      throw new Error(
        `chunk ${msg.chunk}: ${done.succeeded} succeeded + ${done.failed} failed, for ${rows.length} records`,
      );
    }
    await settleChunk(w, m, msg, done, t0, false, span);
  } catch (err) {
    // Stryker disable next-line ConditionalExpression,LogicalOperator: a foreign message returned before anything could throw, so here msg is undefined or its own; either way the message is left for the DLQ
    if (!msg || !isOwnChunk(msg, job)) {
      log.error('undecodable message on job queue; left for the DLQ', { error: err as Error });
      return;
    }
    if (err instanceof SourceChangedError) {
      // Not what the split validated: retrying reads the same wrong bytes. Its records fail now, loudly.
      log.error('chunk source is not what the split validated; its records fail', {
        chunk: msg.chunk,
        error: err,
      });
      const given = await failedChunk(deps, job, msg, errorMessage(err), 'SOURCE_CHANGED', w.run.claims);
      await settleChunk(w, m, msg, given, Date.now(), true, span);
      return;
    }
    if (err instanceof ChunkStoppedError) {
      // Not the chunk's fault: visible again at once for another worker, whatever its attempts so far.
      log.warn('worker stopping: chunk given back', { chunk: msg.chunk });
      ended('released');
      // A queue already deleted (the job was stopped early) has nothing to give back to.
      await deps.queues
        .extendVisibility(w.queueUrl, m.ReceiptHandle!, 0)
        .catch((e: unknown) => (isMissingQueue(e) ? undefined : Promise.reject(e)));
      return;
    }
    if (attempt < MAX_CHUNK_ATTEMPTS) {
      // Released with a short backoff; another attempt (here or in another worker) follows.
      log.warn('chunk failed; it will be retried', { chunk: msg.chunk, attempt, error: err as Error });
      ended('retried');
      span.setAttribute('rowfleet.error', errorMessage(err).slice(0, 300));
      await deps.queues.extendVisibility(
        w.queueUrl,
        m.ReceiptHandle!,
        Math.min(w.visibilitySeconds, 2 * attempt),
      );
      return;
    }
    log.error('chunk failed on its last attempt; its records are recorded as failed', {
      chunk: msg.chunk,
      attempt,
      error: err as Error,
    });
    const given = await failedChunk(deps, job, msg, errorMessage(err), 'CHUNK_FAILED', w.run.claims);
    await settleChunk(w, m, msg, given, Date.now(), true, span);
  } finally {
    clearInterval(heartbeat);
    span.end();
  }
}

/**
 * Stores a chunk's part, counts it once, asks for the finalize if it was the last, deletes the message — in
 * that order, so a crash anywhere leaves the chunk to be delivered again and counted at most once.
 */
async function settleChunk(
  w: Worker,
  m: Message,
  msg: ChunkMessage,
  done: ProcessedChunk,
  t0: number,
  giveUp: boolean,
  span: Span,
): Promise<void> {
  const { deps, job } = w;
  span.setAttributes({
    [ATTR.outcome]: giveUp ? 'gaveUp' : 'done',
    [ATTR.succeeded]: done.succeeded,
    [ATTR.failed]: done.failed,
  });
  const { site, token } = job;
  // A give-up must never replace the part of a chunk an earlier attempt stored and counted (its answer
  // may have been lost on the way back): then the chunk is done and only its message is left.
  if (giveUp && (await deps.jobs.isChunkCounted(site, token, msg.chunk))) {
    w.tally.duplicates++;
    span.setAttribute(ATTR.outcome, 'duplicate');
    await deps.queues.delete(w.queueUrl, m.ReceiptHandle!);
    return;
  }
  // A give-up stores its part under its own key, so it can never replace a processed chunk's part; the
  // count (exactly once) records which of the two the finalize reads.
  const attempt = attemptOf(msg);
  const key = giveUp
    ? keys.gaveUpPart(site, token, msg.chunk, attempt)
    : keys.part(site, token, msg.chunk, attempt);
  // The first delivery to store the chunk's part is the chunk's answer: SQS may deliver a chunk twice, even at
  // the same time, and a processor's outcomes can differ from one delivery to the next (an API that answered once
  // and timed out once). A later delivery never replaces a stored part (the count may already be its figures);
  // it counts the stored part's figures instead, so the count and the part the finalize reads always agree.
  const counts = (await deps.objects.putNew(key, done.part)) ? done : await readPartMeta(deps.objects, key);
  const counted = await deps.jobs.countChunk(site, token, msg.chunk, counts, giveUp, attempt);
  if (counted.counted) {
    w.tally.chunks++;
    w.tally.records += counts.succeeded + counts.failed;
    publishMetrics(deps.env.stage, {
      ChunksProcessed: 1,
      RecordsProcessed: counts.succeeded,
      RecordsFailed: counts.failed,
      ChunkLatency: Date.now() - t0,
    });
  } else {
    w.tally.duplicates++;
    span.setAttribute(ATTR.outcome, 'duplicate');
  }
  const traceparent = traceparentOf(span);
  if (counted.complete)
    await requestFinalize(deps, { site, token, attempt, ...(traceparent ? { traceparent } : {}) });
  else if (counted.totals) await stopOnFailureRate(deps, job, counted.totals);
  await deps.queues.delete(w.queueUrl, m.ReceiptHandle!);
}
