import pMap from 'p-map';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { runsRecord, type ChunkMessage } from '../messages/chunk.ts';
import { recordToRaw } from '../source/csv.ts';
import { readRange } from '../source/scan.ts';
import type { Objects } from '../aws/objects.ts';
import { errorMessage, SourceChangedError, type RecordErrorCode } from '../shared/errors.ts';
import { keys } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_TIMEOUT_MS,
  RecordError,
  type RowContext,
  type RowOutput,
  type RowProcessor,
} from '../processors/types.ts';
import { encodePart, nameHash, type RecordFailure } from '../messages/part.ts';
import { dosDateTime, entryNameProblem, LocalEntries } from '../messages/zip.ts';
import { echoed } from '../shared/own.ts';
import type { Job } from '../jobs/store.ts';
import { claimOutcome, idempotencyKey, type EffectClaims } from '../effects/claims.ts';
import { MIN_WINDOW_MS, type RateLimiter } from './rate-limiter.ts';
import { RecordSlots } from './slots.ts';

/** A chunk's result: its part object (zip entries, counts, failures) and its counts. */
export interface ProcessedChunk {
  readonly part: Buffer;
  readonly succeeded: number;
  readonly failed: number;
}

/** A record the processor fails on is tried this many times (with a short backoff) before it counts as failed. */
export const RECORD_ATTEMPTS = 3;
const RECORD_RETRY_BASE_MS = 10;

/** The worker must stop now: the chunk's records in flight were aborted and the chunk goes back to the queue. */
export class ChunkStoppedError extends Error {
  override readonly name = 'ChunkStoppedError';
}

/** An attempt outlived the processor's `timeoutMs`. */
export class RecordTimeoutError extends Error {
  override readonly name = 'RecordTimeoutError';
}

/** This process, as a claim names its claimer: on Fargate the host name is the task's. */
export const WORKER_ID = `${hostname()}/${process.pid}`;

/** The numbers of the records the split rejected (its rejected.jsonl); empty when it rejected none. */
export async function splitRejected(job: Job, objects: Objects): Promise<ReadonlySet<number>> {
  const rejected = new Set<number>();
  if (!job.rejected) return rejected;
  const text = (await objects.bytes(keys.rejected(job.site, job.token))).toString('utf8');
  for (const l of text.split('\n')) if (l) rejected.add((JSON.parse(l) as { n: number }).n);
  return rejected;
}

/**
 * Reads a chunk's records from its byte range of the source (same parser and rules as the split), pinned to the
 * version the split validated (S3 If-Match on the ETag the chunk names). Every numbered record of the range is
 * accounted for: the accepted ones are returned (of a retry's attempt, only those it runs: the message's `run`), and the rejected ones must be exactly those the split rejected
 * (`rejected`, from {@link splitRejected}). Bytes that are not what the split saw — another version of the object
 * (412), a record one side accepts and the other rejects — throw {@link SourceChangedError}: the chunk fails
 * loudly, and no record is ever dropped. A short read, or another record count, is a read that went wrong: an
 * error retried like any other (the chunk's records end CHUNK_FAILED if it never reads right).
 */
export async function chunkRecords(
  job: Job,
  msg: ChunkMessage,
  objects: Objects,
  maxRecordBytes: number,
  rejected: ReadonlySet<number>,
): Promise<[number, number, string[]][]> {
  const bytes =
    msg.end > msg.start
      ? await objects.bytes(msg.key, { start: msg.start, end: msg.end - 1 }, msg.etag)
      : Buffer.alloc(0);
  if (bytes.length !== Math.max(0, msg.end - msg.start)) {
    throw new Error(`chunk ${msg.chunk}: read ${bytes.length} bytes of a ${msg.end - msg.start}-byte range`);
  }
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
  const records: [number, number, string[]][] = [];
  for (const e of numbered) {
    if (e.kind === 'record' && !rejected.has(e.n)) {
      // A retry's attempt reads its range whole (same numbers, same lines) and runs only its own records.
      if (runsRecord(msg, e.n)) records.push([e.n, e.line, e.fields]);
    } else if (e.kind === 'record' || !rejected.has(e.n)) {
      throw new SourceChangedError(
        `chunk ${msg.chunk}: record ${e.n} (line ${e.line}) was ${rejected.has(e.n) ? 'rejected' : 'accepted'} by the split and ${e.kind === 'record' ? 'accepted' : 'rejected'} here`,
      );
    }
  }
  return records;
}

/**
 * A chunk's zip entries, each record's outputs checked before they go in ({@link entryNameProblem}, and no name
 * an earlier record of the chunk took): a record with one bad name puts none of its outputs in the zip and fails
 * with ZIP_ENTRY_NAME (its side effect, if it has one, did happen: the code is final, never run again).
 */
class ChunkEntries {
  private readonly taken = new Set<string>();
  /** The part meta's `names`: what the finalize checks across chunks. */
  private names = '';

  constructor(readonly entries: LocalEntries) {}

  /** The names of the entries added, as the part's meta keeps them (PartMeta.names). */
  get summary(): string | undefined {
    return this.names || undefined;
  }

  /** Adds record `n`'s outputs, or answers why they cannot go into the zip (then nothing is added). */
  add(n: number, line: number, outputs: readonly RowOutput[]): string | undefined {
    const names = new Set<string>();
    for (const o of outputs) {
      const problem =
        entryNameProblem(o.name) ??
        (this.taken.has(o.name) || names.has(o.name)
          ? 'an earlier record of the chunk took the name'
          : undefined);
      if (problem) return `output "${echoed(o.name)}" cannot be an entry of the zip: ${problem}`;
      names.add(o.name);
    }
    if (outputs.length === 0) return undefined;
    let hashes = '';
    for (const o of outputs) {
      this.entries.add(o.name, o.data);
      this.taken.add(o.name);
      hashes += nameHash(o.name);
    }
    this.names += `${this.names ? ' ' : ''}${n}:${line}:${hashes}`;
    return undefined;
  }
}

const ZIP_ENTRY_NAME: RecordErrorCode = 'ZIP_ENTRY_NAME';

/** A chunk's part object: its meta (site, token, counts, failures) and its prebuilt zip entries. */
function chunkPart(
  job: Job,
  msg: ChunkMessage,
  succeeded: number,
  failures: RecordFailure[],
  entries?: ChunkEntries,
): ProcessedChunk {
  const meta = {
    v: 3 as const,
    site: job.site,
    token: job.token,
    chunk: msg.chunk,
    first: msg.n,
    records: msg.records,
    succeeded,
    failed: failures.length,
    entries: entries?.entries.count ?? 0,
    failures,
    ...(entries?.summary ? { names: entries.summary } : {}),
  };
  return {
    part: encodePart(meta, entries?.entries.bytes() ?? Buffer.alloc(0)),
    succeeded,
    failed: failures.length,
  };
}

/**
 * The part of a chunk given up on: every record it holds (rejected ones excepted) failed with `error`, as
 * CHUNK_FAILED (a poison chunk) or SOURCE_CHANGED (its bytes are not the ones the split validated). For a
 * processor with side effects (`claims` given), what the claims know wins (effects.ts `claimOutcome`): a record
 * done before is replayed, one that failed keeps its code, one claimed without an outcome is IN_DOUBT — never
 * CHUNK_FAILED, which `rowfleet retry` would run again.
 */
export async function failedChunk(
  deps: PipelineDeps,
  job: Job,
  msg: ChunkMessage,
  error: string,
  code: Extract<RecordErrorCode, 'CHUNK_FAILED' | 'SOURCE_CHANGED'> = 'CHUNK_FAILED',
  claims?: Pick<EffectClaims, 'get'>,
): Promise<ProcessedChunk> {
  let failures: RecordFailure[];
  const rejected = await splitRejected(job, deps.objects);
  try {
    if (code === 'SOURCE_CHANGED') throw new SourceChangedError(error);
    const rows = await chunkRecords(job, msg, deps.objects, deps.limits.maxRecordBytes, rejected);
    failures = rows.map(([n, line, fields]) => ({
      n,
      line,
      code,
      message: error,
      raw: recordToRaw(fields, job.delimiter),
    }));
  } catch {
    // The range itself cannot be read (or is not the split's): the numbers are known, the lines only for the
    // first record.
    failures = [];
    for (let n = msg.n; n < msg.n + msg.records; n++) {
      if (!rejected.has(n) && runsRecord(msg, n))
        failures.push({ n, line: n === msg.n ? msg.line : 0, code, message: error, raw: '' });
    }
  }
  if (!claims) return chunkPart(job, msg, 0, failures);
  const found = await pMap(failures, (f) => claims.get(job.site, job.token, f.n), {
    concurrency: CLAIM_READS_IN_FLIGHT,
  });
  const entries = new LocalEntries(dosDateTime(new Date(job.receivedAt)));
  const named = new ChunkEntries(entries);
  const left: RecordFailure[] = [];
  let succeeded = 0;
  failures.forEach((f, i) => {
    const r = claimOutcome(found[i]);
    if (!r) left.push(f);
    else if ('outputs' in r) {
      const problem = named.add(f.n, f.line, r.outputs);
      if (problem) left.push({ ...f, code: ZIP_ENTRY_NAME, message: problem });
      else succeeded++;
    } else left.push({ ...f, code: r.code, message: r.message });
  });
  return chunkPart(job, msg, succeeded, left, named);
}

/** Claims read at once when a chunk with side effects is given up. */
const CLAIM_READS_IN_FLIGHT = 16;

/** What a record's result is. */
type Done = { readonly outputs: readonly RowOutput[] } | { readonly code: string; readonly message: string };

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
}

/** The job's side of every record's context. */
interface JobSide {
  readonly site: string;
  readonly token: string;
  readonly header: readonly string[];
  readonly options: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly stop?: AbortSignal;
}

/**
 * One record's context for one attempt. Its signal is made on first use (a synchronous processor that never
 * asks costs no controller and no timer); `bounded` makes an attempt fail when its signal aborts, whether or
 * not the processor listens.
 */
class RecordContext implements RowContext {
  readonly site: string;
  readonly token: string;
  readonly header: readonly string[];
  readonly options: Readonly<Record<string, string>>;
  private ctl?: AbortController;
  private timer?: NodeJS.Timeout;
  private onStop?: () => void;

  constructor(
    private readonly job: JobSide,
    private readonly n: number,
    readonly attempt: number,
  ) {
    this.site = job.site;
    this.token = job.token;
    this.header = job.header;
    this.options = job.options;
  }

  get idempotencyKey(): string {
    return idempotencyKey(this.site, this.token, this.n);
  }

  get signal(): AbortSignal {
    return (this.ctl ??= this.arm()).signal;
  }

  private arm(): AbortController {
    const ctl = new AbortController();
    const { stop, timeoutMs } = this.job;
    if (stop?.aborted) ctl.abort(stop.reason);
    else if (stop)
      stop.addEventListener('abort', (this.onStop = () => ctl.abort(stop.reason)), { once: true });
    this.timer = setTimeout(
      () => ctl.abort(new RecordTimeoutError(`record ${this.n}: attempt timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    return ctl;
  }

  /** The attempt's result, or its signal's reason if that aborts first. */
  bounded<T>(p: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (signal.aborted) {
      p.catch(() => undefined);
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e as Error);
        },
      );
    });
  }

  /** The attempt is over: its timer and stop listener go. */
  end(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.onStop) this.job.stop?.removeEventListener('abort', this.onStop);
  }
}

/** A processor's answer as a promise, a synchronous throw included. */
function call(p: RowProcessor, row: Row, ctx: RecordContext): Promise<readonly RowOutput[]> {
  try {
    return Promise.resolve(p.process(row, ctx));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

interface Row {
  readonly n: number;
  readonly line: number;
  readonly fields: readonly string[];
}

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
 * A chunk's results in record order, whatever order the records finish in: a record's entries go into the part
 * once every record before it is in. A record finishing in turn (always, for a synchronous processor) goes
 * straight in; one finishing early waits in `held`.
 */
class InOrder {
  succeeded = 0;
  readonly failures: RecordFailure[] = [];
  private next = 0;
  private held: (Done | undefined)[] | undefined;
  readonly named: ChunkEntries;

  constructor(
    entries: LocalEntries,
    private readonly records: readonly [number, number, string[]][],
    private readonly delimiter: string | undefined,
  ) {
    this.named = new ChunkEntries(entries);
  }

  /** Record `i` succeeded with `outputs`. */
  ok(i: number, outputs: readonly RowOutput[]): void {
    if (i !== this.next) return this.hold(i, { outputs });
    this.addOk(i, outputs);
    this.advance();
  }

  set(i: number, done: Done): void {
    if (i !== this.next) return this.hold(i, done);
    this.apply(i, done);
    this.advance();
  }

  private hold(i: number, done: Done): void {
    (this.held ??= new Array<Done | undefined>(this.records.length))[i] = done;
  }

  private advance(): void {
    this.next++;
    const held = this.held;
    if (!held) return;
    for (let d = held[this.next]; d !== undefined; d = held[this.next]) {
      held[this.next] = undefined;
      this.apply(this.next, d);
      this.next++;
    }
  }

  private addOk(i: number, outputs: readonly RowOutput[]): void {
    const [n, line] = this.records[i]!;
    const problem = this.named.add(n, line, outputs);
    if (problem) this.fail(i, { code: ZIP_ENTRY_NAME, message: problem });
    else this.succeeded++;
  }

  private apply(i: number, done: Done): void {
    if ('outputs' in done) this.addOk(i, done.outputs);
    else this.fail(i, done);
  }

  private fail(i: number, done: { readonly code: string; readonly message: string }): void {
    const [n, line, fields] = this.records[i]!;
    this.failures.push({
      n,
      line,
      code: done.code,
      message: done.message,
      raw: recordToRaw(fields, this.delimiter),
    });
  }
}

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
  records: readonly [number, number, string[]][],
  processor: RowProcessor,
  run: ChunkRun = {},
  /**
   * Called once no record of the chunk waits for a slot any more (the last has started, or the chunk stopped
   * early): from then on the chunk only frees slots, and the worker may take its next chunk.
   */
  onStarted?: () => void,
): Promise<ProcessedChunk> {
  const { claims, limiter, signal: stop } = run;
  if (processor.sideEffects && !claims)
    throw new Error(`processor ${processor.name} has side effects: it runs only with claims (effects.ts)`);
  if (processor.rateLimit && !limiter)
    throw new Error(`processor ${processor.name} is rate-limited: it runs only with its limiter`);
  const entries = new LocalEntries(dosDateTime(new Date(job.receivedAt)));
  const out = new InOrder(entries, records, job.delimiter);
  const side: JobSide = {
    site: job.site,
    token: job.token,
    header: job.header ?? [],
    options: job.options ?? {},
    timeoutMs: processor.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stop,
  };
  const slots = run.slots ?? new RecordSlots(processor.concurrency ?? DEFAULT_CONCURRENCY);
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
        const c = await claims!.claim(site, token, row.n, claimId, claimedBy, job.attempt ?? 1);
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

  for (let i = 0; i < records.length; i++) {
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
  onStarted?.();
  if (inFlight > 0) await new Promise<void>((r) => (drained = r));
  if (stop?.aborted) throw new ChunkStoppedError('the worker is stopping');
  if (broken) throw broken.error;
  return chunkPart(job, msg, out.succeeded, out.failures, out.named);
}
