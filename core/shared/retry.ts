/**
 * The one retry loop of the code base (beside the SDK's own retries and the budget store's optimistic-concurrency
 * loops, which retry on a lost race rather than on an error). Kept to p-retry's shape — attempts, a delay per
 * failed attempt, a filter, a hook — so that taking p-retry (7.x, the last line for Node 20) is a change of this
 * file alone.
 */

export interface RetryOptions {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** The wait (ms) after failed attempt `attempt` (1-based) before the next. */
  readonly delayMs: (attempt: number) => number;
  /** Whether a failure may be tried again; any other is thrown at once. @default every failure */
  readonly retryIf?: (err: unknown) => boolean;
  /** Called before each wait, with the failure, the attempt that failed and the wait. */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

const sleeper = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn` (given the attempt number, from 1) until it succeeds, its failure may not be retried, or the attempts
 * are spent: then the last failure is thrown.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const sleep = o.sleep ?? sleeper;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= o.attempts || (o.retryIf && !o.retryIf(err))) throw err;
      const ms = o.delayMs(attempt);
      o.onRetry?.(err, attempt, ms);
      await sleep(ms);
    }
  }
}
