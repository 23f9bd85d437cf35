import { getStage } from '../config/index.ts';
import { Objects } from './aws/objects.ts';
import { Queues } from './aws/queues.ts';
import { EcsTaskLauncher } from './aws/ecs-launcher.ts';
import { intEnv, resourceEnv } from './shared/env.ts';
import { workerBudgetOf, type ResolvedWorkerBudget } from '../config/budget.ts';
import { GrantStore } from './budget/store.ts';
import { JobStore } from './jobs/store.ts';
import type { TaskLauncher } from './aws/task-launcher.ts';
import type { Limits, Timings } from '../config/index.ts';
import type { ResourceEnv } from './shared/env.ts';
import { UsageStore } from './usage/store.ts';
import { JobNotifier } from './jobs/notify.ts';
import type { Tracing } from './shared/trace.ts';
import { fileTraceStore, type TraceStore } from './shared/trace-file.ts';
import { tracingFromEnv } from './aws/tracing.ts';

/** Everything the pipeline's steps use, injected: the handlers, the worker and tests build one. */
export interface PipelineDeps {
  readonly env: ResourceEnv;
  readonly limits: Limits;
  /** The stage's timings (config/schema.ts timingsSchema). */
  readonly timings: Timings;
  readonly jobs: JobStore;
  readonly objects: Objects;
  readonly queues: Queues;
  readonly launcher: TaskLauncher;
  /** The stage's worker budget (config/budget.ts) and its grants in the job table (core/budget/store.ts). */
  readonly budget: ResolvedWorkerBudget;
  readonly grants: GrantStore;
  /** Usage counters per site, day and office (core/usage/store.ts). @default a UsageStore on `env.table` */
  readonly usage?: UsageStore;
  /** Job-outcome notifications (core/jobs/notify.ts). @default none (JOBS_TOPIC_ARN unset) */
  readonly notifier?: JobNotifier;
  /** The process's tracer (core/aws/tracing.ts). @default none: spans are no-ops (ROWFLEET_TRACING unset) */
  readonly tracing?: Tracing;
  /** Where a job's spans are read back (the local span store). @default none: on AWS, CloudWatch has them */
  readonly traces?: TraceStore;
}

/** Builds the pipeline's dependencies from the environment the CDK stack (or the local runtime) sets. */
export function depsFromEnv(launcher: TaskLauncher = new EcsTaskLauncher()): PipelineDeps {
  const env = resourceEnv();
  const stage = getStage(env.stage);
  // `rowfleet dev|run --max-workers N` sets this for the local runtime; the stages' budgets are in config/.
  const maxWorkers = intEnv('ROWFLEET_MAX_WORKERS', 0);
  // The local runtime sets this to the machine's cores (config/schema.ts `defaultWorkersPerJob`).
  const defaultWorkers = intEnv('ROWFLEET_DEFAULT_WORKERS_PER_JOB', 0);
  const topic = process.env.JOBS_TOPIC_ARN;
  const tracing = tracingFromEnv();
  const traceDir = process.env.ROWFLEET_TRACE_DIR;
  return {
    env,
    limits: defaultWorkers > 0 ? { ...stage.limits, defaultWorkersPerJob: defaultWorkers } : stage.limits,
    timings: stage.timings,
    jobs: new JobStore(env.table),
    objects: new Objects(env.bucket),
    queues: new Queues(),
    launcher,
    budget: workerBudgetOf(stage, maxWorkers > 0 ? maxWorkers : undefined),
    grants: new GrantStore(env.table),
    usage: new UsageStore(env.table),
    ...(topic ? { notifier: new JobNotifier(topic, stage.notifications) } : {}),
    ...(tracing ? { tracing } : {}),
    ...(traceDir ? { traces: fileTraceStore(traceDir) } : {}),
  };
}
