import type { Limits } from '../config/index.ts';
import type { ResourceEnv } from './env.ts';
import type { JobStore } from './jobs.ts';
import type { TaskLauncher } from './launcher.ts';
import type { Objects } from './aws/objects.ts';
import type { Queues } from './aws/queues.ts';
import type { UsageStore } from './usage.ts';
import type { JobNotifier } from './notify.ts';

/** Everything the pipeline's steps use, injected: the handlers, the worker and tests build one. */
export interface PipelineDeps {
  readonly env: ResourceEnv;
  readonly limits: Limits;
  readonly jobs: JobStore;
  readonly objects: Objects;
  readonly queues: Queues;
  readonly launcher: TaskLauncher;
  /** Usage counters per site, day and office (core/usage.ts). @default a UsageStore on `env.table` */
  readonly usage?: UsageStore;
  /** Job-outcome notifications (core/notify.ts). @default none (JOBS_TOPIC_ARN unset) */
  readonly notifier?: JobNotifier;
}

/** The message a finalize request carries (finalize queue). */
export interface FinalizeRequest {
  readonly site: string;
  readonly token: string;
}

export async function requestFinalize(deps: PipelineDeps, req: FinalizeRequest): Promise<void> {
  await deps.queues.sendOne(deps.env.finalizeQueueUrl, JSON.stringify(req), req.site, req.token);
}
