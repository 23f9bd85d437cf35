/** What a processor sees of one attempt at one record: the job, its options, a signal bounded by the timeout. */
import { idempotencyKey } from '../effects/claims.ts';
import type { RowContext } from '../processors/types.ts';

/** An attempt outlived the processor's `timeoutMs`. */
export class RecordTimeoutError extends Error {
  override readonly name = 'RecordTimeoutError';
}

/** The job's side of every record's context. */
export interface JobSide extends Pick<RowContext, 'site' | 'token' | 'header' | 'options'> {
  readonly timeoutMs: number;
  readonly stop?: AbortSignal;
}

/**
 * One record's context for one attempt. Its signal is made on first use (a synchronous processor that never
 * asks costs no controller and no timer); `bounded` makes an attempt fail when its signal aborts, whether or
 * not the processor listens.
 */
export class RecordContext implements RowContext {
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
