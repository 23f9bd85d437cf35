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
import { ENV } from '../config/env.ts';

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

/**
 * What the entry point of a stage (the split, the finalize) hands on to its steps: every store, queue, launcher and
 * setting, but not the local span store (read by the timeline only). Each step below an entry point takes the Pick of
 * it that it uses (test/unit/deps-narrow.test.ts).
 */
export type StageDeps = Pick<
  PipelineDeps,
  | 'env'
  | 'grants'
  | 'jobs'
  | 'launcher'
  | 'limits'
  | 'notifier'
  | 'objects'
  | 'queues'
  | 'timings'
  | 'tracing'
  | 'usage'
>;

/**
 * What the pipeline's dependencies are built from: the resources the stack (or the local runtime) made and the
 * local runtime's overrides of the stage's worker numbers.
 */
export interface DepsConfig {
  readonly env: ResourceEnv;
  /** The worker budget (`rowfleet dev|run --max-workers N`). @default the stage's (config/budget.ts) */
  readonly maxWorkers?: number;
  /** Workers of a job that names no number (the local runtime: the machine's cores). @default the stage's */
  readonly defaultWorkersPerJob?: number;
  /** Where job outcomes are published (core/jobs/notify.ts). @default none */
  readonly jobsTopicArn?: string;
  /** The process's tracer (ROWFLEET_TRACING: core/aws/tracing.ts). @default none */
  readonly tracing?: Tracing;
  /** The local span store's folder (ROWFLEET_TRACE_DIR, set by the local runtime). @default none */
  readonly traceDir?: string;
}

/** The configuration an environment (the Lambda's, the worker's, a local process's) describes. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): DepsConfig {
  const resources = resourceEnv(env);
  // `rowfleet dev|run --max-workers N` sets this for the local runtime; the stages' budgets are in config/.
  const maxWorkers = intEnv(ENV.maxWorkers, 0, env);
  // The local runtime sets this to the machine's cores (config/schema.ts `defaultWorkersPerJob`).
  const defaultWorkers = intEnv(ENV.defaultWorkersPerJob, 0, env);
  const topic = env[ENV.jobsTopicArn];
  const tracing = tracingFromEnv(env);
  const traceDir = env[ENV.traceDir];
  return {
    env: resources,
    ...(tracing ? { tracing } : {}),
    ...(traceDir ? { traceDir } : {}),
    ...(maxWorkers > 0 ? { maxWorkers } : {}),
    ...(defaultWorkers > 0 ? { defaultWorkersPerJob: defaultWorkers } : {}),
    ...(topic ? { jobsTopicArn: topic } : {}),
  };
}

/** Builds the pipeline's dependencies from a configuration, reading no environment. */
export function buildDeps(config: DepsConfig, launcher: TaskLauncher = new EcsTaskLauncher()): PipelineDeps {
  const { env } = config;
  const stage = getStage(env.stage);
  return {
    env,
    limits:
      config.defaultWorkersPerJob !== undefined
        ? { ...stage.limits, defaultWorkersPerJob: config.defaultWorkersPerJob }
        : stage.limits,
    timings: stage.timings,
    jobs: new JobStore(env.table),
    objects: new Objects(env.bucket),
    queues: new Queues(),
    launcher,
    budget: workerBudgetOf(stage, config.maxWorkers),
    grants: new GrantStore(env.table),
    usage: new UsageStore(env.table),
    ...(config.jobsTopicArn ? { notifier: new JobNotifier(config.jobsTopicArn, stage.notifications) } : {}),
    ...(config.tracing ? { tracing: config.tracing } : {}),
    ...(config.traceDir ? { traces: fileTraceStore(config.traceDir) } : {}),
  };
}

/** Builds the pipeline's dependencies from the environment the CDK stack (or the local runtime) sets. */
export function depsFromEnv(launcher: TaskLauncher = new EcsTaskLauncher()): PipelineDeps {
  return buildDeps(fromEnv(), launcher);
}
