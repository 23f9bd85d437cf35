import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../aws/clients.ts';
import { TABLE_PARTITIONS } from '../../config/names.ts';

/** The shortest window of the limiter: 20 windows a second keep any one-second span within 5 % of the rate. */
export const MIN_WINDOW_MS = 50;
/** Window counters outlive their window by this much, then DynamoDB's TTL removes them. */
const WINDOW_TTL_SECONDS = 120;

/** The limiter's key in the table for one window: the same for every site, job and worker of the stage. */
export const windowKey = (name: string, window: number) => ({
  pk: `${TABLE_PARTITIONS.rateWindow}${name}#${window}`,
  sk: 'RATE',
});

export interface RateLimiterOptions {
  readonly clock?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const sleeper = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  readonly signal?: AbortSignal;
  readonly onAbort?: () => void;
}

/**
 * A rate limit shared by every process of the stage (every worker of every job, on any machine): at most
 * `perSecond` takes per second, through counters in the job table. Time is cut into windows of
 * `max(50 ms, 1 s / perSecond)`; window `w` (epoch ms ÷ window length) may hand out
 * `⌊(w+1)·c⌋ − ⌊w·c⌋` takes, `c` = perSecond × window ÷ 1 s, so every second hands out `perSecond` and any
 * one-second span at most one window's share more (5 % at 200/s).
 *
 * Item per window: pk `RATE#<name>#<window>`, sk `RATE`, attribute `n` (takes asked for), `expiresAt`. The
 * name is the limit's (e.g. `ses`), never a site's: the quota it models is the stage account's. A process
 * asks for all its waiters at once (up to the window's capacity) with one `ADD n :k` and is granted what fitted
 * under the capacity before its own addition; a process granted nothing waits for the next window. So the
 * writes grow with windows × processes waiting, not with records: at most one write per process and window.
 */
export class RateLimiter {
  /** DynamoDB requests made (for the benchmark's cost figures). */
  readonly stats = { writes: 0, granted: 0 };
  readonly windowMs: number;
  private readonly perWindow: number;
  private readonly queue: Waiter[] = [];
  private running = false;
  /** The last window seen full by this process. */
  private fullUpTo = -1;
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly table: string,
    readonly name: string,
    readonly perSecond: number,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
    o: RateLimiterOptions = {},
  ) {
    if (!(perSecond > 0)) throw new Error(`rate limit ${name}: perSecond must be positive, got ${perSecond}`);
    this.windowMs = Math.max(MIN_WINDOW_MS, Math.ceil(1000 / perSecond));
    this.perWindow = (perSecond * this.windowMs) / 1000;
    this.clock = o.clock ?? Date.now;
    this.sleep = o.sleep ?? sleeper;
  }

  /** Takes handed out in window `w`. */
  capacity(w: number): number {
    return Math.floor((w + 1) * this.perWindow) - Math.floor(w * this.perWindow);
  }

  /** Resolves when this caller may go; rejects with the signal's reason when it is aborted first. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = signal
        ? () => {
            const i = this.queue.indexOf(waiter);
            if (i >= 0) this.queue.splice(i, 1);
            reject(signal.reason);
          }
        : undefined;
      const waiter: Waiter = { resolve, reject, signal, onAbort };
      if (signal && onAbort) signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      if (!this.running) void this.run();
    });
  }

  /**
   * Lets `count` waiters go, paced over window `w` (one every window ÷ capacity), not all at its start: mails
   * reach SES as a steady stream, so queueing on the way bunches them less.
   */
  private grant(count: number, w: number, cap: number): void {
    const now = this.clock();
    const step = this.windowMs / cap;
    for (let i = 0; i < count && this.queue.length > 0; i++) {
      const waiter = this.queue.shift()!;
      this.stats.granted++;
      const go = () => {
        if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
        waiter.resolve();
      };
      const wait = w * this.windowMs + i * step - now;
      if (wait <= 0) go();
      else setTimeout(go, wait);
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const now = this.clock();
        const w = Math.floor(now / this.windowMs);
        if (w <= this.fullUpTo) {
          await this.sleep((this.fullUpTo + 1) * this.windowMs - now);
          continue;
        }
        const cap = this.capacity(w);
        const { granted, full } =
          cap > 0
            ? await this.takeFrom(w, Math.min(this.queue.length, cap), cap)
            : { granted: 0, full: true };
        this.grant(granted, w, cap);
        if (full) this.fullUpTo = w;
      }
    } catch (err) {
      // The table cannot be reached: every waiter fails (its record's chunk is tried again later).
      for (const w of this.queue.splice(0)) {
        if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
        w.reject(err);
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Adds `want` to window `w`'s counter and keeps what fitted under its capacity: one write, no read, and a
   * partial grant when other processes took part of the window first (the counter may pass the capacity;
   * nothing beyond it is ever granted).
   */
  private async takeFrom(w: number, want: number, cap: number): Promise<{ granted: number; full: boolean }> {
    this.stats.writes++;
    const r = await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: windowKey(this.name, w),
        UpdateExpression: 'ADD #n :k SET expiresAt = if_not_exists(expiresAt, :exp)',
        ExpressionAttributeNames: { '#n': 'n' },
        ExpressionAttributeValues: {
          ':k': want,
          ':exp': Math.ceil(((w + 1) * this.windowMs) / 1000) + WINDOW_TTL_SECONDS,
        },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const after = Number(r.Attributes?.n ?? want);
    return { granted: Math.max(0, Math.min(want, cap - (after - want))), full: after >= cap };
  }
}
