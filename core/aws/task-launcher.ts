/** Starts and stops the row workers of one job. ECS on AWS, child processes locally. */
export interface TaskLauncher {
  /** Starts `count` workers for the job; returns their task ids. */
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
  return { SITE: req.site, JOB_TOKEN: req.token };
}
