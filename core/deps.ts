import { getStage } from '../config/index.ts';
import { Objects } from './aws/objects.ts';
import { Queues } from './aws/queues.ts';
import { EcsTaskLauncher } from './aws/ecs-launcher.ts';
import { resourceEnv } from './env.ts';
import { JobStore } from './jobs.ts';
import type { TaskLauncher } from './launcher.ts';
import type { PipelineDeps } from './pipeline.ts';
import { UsageStore } from './usage.ts';
import { JobNotifier } from './notify.ts';

/** Builds the pipeline's dependencies from the environment the CDK stack (or the local runtime) sets. */
export function depsFromEnv(launcher: TaskLauncher = new EcsTaskLauncher()): PipelineDeps {
  const env = resourceEnv();
  const stage = getStage(env.stage);
  const topic = process.env.JOBS_TOPIC_ARN;
  return {
    env,
    limits: stage.limits,
    jobs: new JobStore(env.table),
    objects: new Objects(env.bucket),
    queues: new Queues(),
    launcher,
    usage: new UsageStore(env.table),
    ...(topic ? { notifier: new JobNotifier(topic, stage.notifications) } : {}),
  };
}
