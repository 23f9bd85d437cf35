/**
 * The record runner: a chunk's records through the processor — attempts, timeouts, claims and the rate limiter —
 * into the part. Reading the range is chunk-records.ts, the record order in-order.ts, the part chunk-part.ts.
 */
import { randomUUID } from 'node:crypto';
import { getMaxListeners, setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChunkMessage } from '../messages/chunk.ts';
import { errorMessage } from '../shared/errors.ts';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_TIMEOUT_MS,
  RecordError,
  type RowInput,
  type RowOutput,
  type RowProcessor,
} from '../processors/types.ts';
import { dosDateTime, LocalEntries } from '../messages/zip.ts';
import type { Job } from '../jobs/store.ts';
import { claimOutcome, type EffectClaims } from '../effects/claims.ts';
import { MIN_WINDOW_MS, type RateLimiter } from './rate-limiter.ts';
import { RecordSlots } from './slots.ts';
import { chunkPart, type PartSizes, type ProcessedChunk } from './chunk-part.ts';
import { partHeadroom } from '../messages/part.ts';
import { InOrder, type Done } from './in-order.ts';
import { RecordContext, type JobSide } from './record-context.ts';
import { SheetRows, writesSheetRows } from './sheet-rows.ts';
import type { RejectedRecord } from '../source/csv.ts';
import type { SourceLines } from './chunk-records.ts';

/** A record the processor fails on is tried this many times (with a short backoff) before it counts as failed. */
export const RECORD_ATTEMPTS = 3;
const RECORD_RETRY_BASE_MS = 10;

/** The worker must stop now: the chunk's records in flight were aborted and the chunk goes back to the queue. */
export class ChunkStoppedError extends Error {
  override readonly name = 'ChunkStoppedError';
}

/** This process, as a claim names its claimer: on Fargate the host name is the task's. */
export const WORKER_ID = `${hostname()}/${process.pid}`;

/** What a chunk's records run with besides the processor; a worker shares it between the chunks it holds. */
export interface ChunkRun {
  /** Records in flight at once. @default a pool of the processor's `concurrency` for this chunk alone */
  readonly slots?: RecordSlots;
  /** Claims of a processor with side effects (it cannot run without). */
  readonly claims?: Pick<EffectClaims, 'claim' | 'done' | 'failed' | 'release'>;
  /** The stage-wide limiter of a rate-limited processor (it cannot run without). */
  readonly limiter?: Pick<RateLimiter, 'take'>;
  /** Aborted when the worker must stop now: records in flight are aborted and the chunk goes back. */
  readonly signal?: AbortSignal;
  /** Who claims records (side effects): kept with each claim. @default this process */
  readonly claimedBy?: string;
  /** The worker's part sizes so far: a chunk's buffers are made as large at once. @default grown as needed */
  readonly sizes?: PartSizes;
}

/** A processor's answer as a promise, a synchronous throw included. */
function call(p: RowProcessor, row: Row, ctx: RecordContext): Promise<readonly RowOutput[]> {
  try {
    return Promise.resolve(p.process(row, ctx));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

type Row = RowInput;

/** Whether a failed attempt may be tried again: anything but a RecordError that says it must not. */
const retryable = (err: unknown) => !(err instanceof RecordError) || err.retryable;

/** A failed record's code and message. */
function failureOf(err: unknown): { code: string; message: string } {
  return err instanceof RecordError
    ? { code: err.code, message: err.message }
    : { code: 'PROCESSING_FAILED', message: errorMessage(err) };
}

/** A rate limiter's turn older than one of its shortest windows (a slow claim in between) is not used. */
const STALE_TURN_MS = MIN_WINDOW_MS;

const backoff = (attempt: number) => RECORD_RETRY_BASE_MS * 2 ** (attempt - 1);

/**
 * Runs the processor over one chunk's records and builds its part object (zip entries in record order, counts,
 * failures). Many records are in flight at once (up to the slots' size, shared with the worker's other chunk);
 * a synchronous processor takes the direct path — no promise, no microtask per record. Each record is tried up
 * to RECORD_ATTEMPTS times; a processor with side effects claims each record first and records its outcome
 * (effects.ts), a rate-limited one takes from the stage's limiter before each attempt. A failure of the
 * machinery itself (claims or limiter unreachable) fails the whole chunk, which is then tried again.
 */
export async function processChunk(
  job: Job,
  msg: ChunkMessage,
  /** chunkRecords' answer (`lines`: where the records are in the range, for the sheet rows). */
  records: readonly [number, number, string[]][] & { readonly lines?: SourceLines },
  processor: RowProcessor,
  run: ChunkRun = {},
  /**
   * Called once the chunk's records left to start fit in the slots (or it stopped early): the worker may take its
   * next chunk now. Its message, read and parse take a round trip or three; asked only once the last record had
   * started, they left the slots freed meanwhile idle at every chunk's end.
   */
  onStarted?: () => void,
  /** The range's records the split rejected (chunkRecords' `rejectedOut`): given, the part carries its sheet rows. */
  rejected?: readonly RejectedRecord[],
): Promise<ProcessedChunk> {
  const { claims, limiter, signal: stop } = run;
  if (processor.sideEffects && !claims)
    throw new Error(`processor ${processor.name} has side effects: it runs only with claims (effects.ts)`);
  if (processor.rateLimit && !limiter)
    throw new Error(`processor ${processor.name} is rate-limited: it runs only with its limiter`);
  const writesRows = writesSheetRows(msg, records.length, rejected);
  const room = run.sizes?.room(records.length);
  // The rows are copied after the entries when the part is framed: the entries' buffer has room for both.
  const entries = new LocalEntries(
    dosDateTime(new Date(job.receivedAt)),
    partHeadroom(records.length),
    room && room.entries + (writesRows ? room.rows : 0),
  );
  const sheet = writesRows ? new SheetRows(job, rejected, records.lines, room?.rows) : undefined;
  const out = new InOrder(entries, records, job.delimiter, sheet, job.nameHash);
  const side: JobSide = {
    site: job.site,
    token: job.token,
    header: job.header ?? [],
    options: job.options ?? {},
    timeoutMs: processor.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stop,
  };
  const slots = run.slots ?? new RecordSlots(processor.concurrency ?? DEFAULT_CONCURRENCY);
  // Each record in flight that asks for its signal listens to the worker's stop signal until it settles: up to the
  // slots' bound at once, by design, which Node would otherwise report as a listener leak (its default is 10).
  if (stop && getMaxListeners(stop) !== 0 && getMaxListeners(stop) < slots.size + 1)
    setMaxListeners(slots.size + 1, stop);
  const direct = !processor.sideEffects && !processor.rateLimit;
  const claimId = randomUUID();
  const claimedBy = run.claimedBy ?? WORKER_ID;

  let inFlight = 0;
  let broken: { error: unknown } | undefined;
  let drained: (() => void) | undefined;
  const track = (i: number, p: Promise<Done>) => {
    inFlight++;
    p.then((done) => out.set(i, done))
      .catch((error: unknown) => (broken ??= { error }))
      .finally(() => {
        slots.give();
        if (--inFlight === 0) drained?.();
      });
  };

  /** A direct record whose first attempt did not answer synchronously: awaited, retried. */
  const retried = async (
    row: Row,
    first: Promise<readonly RowOutput[]>,
    ctx1: RecordContext,
  ): Promise<Done> => {
    let ctx = ctx1;
    let attempt = first;
    for (let a = 1; ; a++) {
      try {
        return { outputs: await ctx.bounded(attempt) };
      } catch (err) {
        if (stop?.aborted) throw new ChunkStoppedError('the worker is stopping');
        if (!retryable(err) || a >= RECORD_ATTEMPTS) return failureOf(err);
      } finally {
        ctx.end();
      }
      await sleep(backoff(a));
      ctx = new RecordContext(side, row.n, a + 1);
      attempt = call(processor, row, ctx);
    }
  };

  /** A record of a processor with side effects or a rate limit: limiter, claim, attempts, outcome. */
  const effectful = async (row: Row): Promise<Done> => {
    const { site, token } = side;
    let claimed = false;
    for (let a = 1; ; a++) {
      if (limiter) await limiter.take(stop);
      if (processor.sideEffects && !claimed) {
        const t = Date.now();
        // A resubmitted record may run where its attempt before failed with a processor's code (its values changed).
        const c = await claims!.claim(
          site,
          token,
          row.n,
          claimId,
          claimedBy,
          job.attempt ?? 1,
          msg.numbered === true,
        );
        if (!c.won)
          return claimOutcome(c.claim) ?? { code: 'IN_DOUBT', message: 'claimed before; the claim is gone' };
        claimed = true;
        // A slow claim made the turn stale: take a fresh one, so the effect starts when the limiter says.
        if (limiter && Date.now() - t > STALE_TURN_MS) await limiter.take(stop);
      }
      const ctx = new RecordContext(side, row.n, a);
      let outputs: readonly RowOutput[] | undefined;
      let error: unknown;
      try {
        outputs = await ctx.bounded(call(processor, row, ctx));
      } catch (err) {
        error = err;
      } finally {
        ctx.end();
      }
      if (outputs) {
        // Not recorded (the table unreachable): the chunk fails; a redelivery finds the claim without outcome.
        if (claimed) await claims!.done(site, token, row.n, claimId, outputs);
        return { outputs };
      }
      const nothingHappened = error instanceof RecordError;
      if (processor.sideEffects && !nothingHappened) {
        // The effect may or may not have happened: the claim stays without an outcome, for every delivery.
        return { code: 'IN_DOUBT', message: `outcome unknown, not tried again: ${errorMessage(error)}` };
      }
      if (stop?.aborted) {
        if (claimed) await claims!.release(site, token, row.n, claimId);
        throw new ChunkStoppedError('the worker is stopping');
      }
      if (retryable(error) && a < RECORD_ATTEMPTS) {
        await sleep(backoff(a));
        continue;
      }
      const f = failureOf(error);
      if (claimed) await claims!.failed(site, token, row.n, claimId, f.code, f.message);
      return f;
    }
  };

  let announced = false;
  for (let i = 0; i < records.length; i++) {
    if (!announced && records.length - i <= slots.size) {
      announced = true;
      onStarted?.();
    }
    if (!slots.tryTake()) await slots.take();
    if (stop?.aborted || broken) {
      slots.give();
      break;
    }
    const [n, line, fields] = records[i]!;
    const row: Row = { n, line, fields };
    if (!direct) {
      track(i, effectful(row));
      continue;
    }
    const ctx = new RecordContext(side, n, 1);
    let result: readonly RowOutput[] | Promise<readonly RowOutput[]>;
    try {
      result = processor.process(row, ctx);
    } catch (err) {
      result = Promise.reject(err as Error);
    }
    // Await only what is a promise: a microtask per record is measurable at a million records.
    if (!(result instanceof Promise)) {
      ctx.end();
      slots.give();
      out.ok(i, result);
      continue;
    }
    track(i, retried(row, result, ctx));
  }
  if (!announced) onStarted?.();
  if (inFlight > 0) await new Promise<void>((r) => (drained = r));
  if (stop?.aborted) throw new ChunkStoppedError('the worker is stopping');
  if (broken) throw broken.error;
  const rows = sheet?.bytes();
  run.sizes?.add(records.length, entries.bytes().length, rows?.length ?? 0);
  return chunkPart(job, msg, out.succeeded, out.failures, out.named, rows);
}
