import { ENV } from '../../config/env.ts';
/** Starts and stops the row workers of one job. ECS on AWS, child processes locally. */
export interface TaskLauncher {
  /**
   * Starts `count` workers for the job; returns their task ids. When some or all could not be started it throws
   * {@link LaunchFailedError}, naming the ones that did (never a plain error after tasks started).
   */
  launch(req: LaunchRequest): Promise<string[]>;
  /** Stops every worker still running for the job; returns how many were stopped. */
  stop(site: string, token: string): Promise<number>;
  /** Every worker task still running, with the job it works for (for the reaper). */
  list(): Promise<TaskInfo[]>;
}

export interface TaskInfo {
  readonly id: string;
  readonly site: string;
  readonly token: string;
}

export interface LaunchRequest {
  readonly site: string;
  readonly token: string;
  readonly count: number;
}

/** Environment a worker needs besides the stage's resources. */
export function workerEnv(req: LaunchRequest): Record<string, string> {
  return { [ENV.site]: req.site, [ENV.jobToken]: req.token };
}

/**
 * A launch that started fewer tasks than asked (RunTask refused some or all: vCPU quota, capacity, throttling
 * beyond the client's retries). `started` are the tasks that did start, so a caller retries only the rest.
 */
export class LaunchFailedError extends Error {
  override readonly name = 'LaunchFailedError';
  constructor(
    readonly started: readonly string[],
    /** Tasks asked for and not started. */
    readonly failed: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
