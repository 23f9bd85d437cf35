import { getStage } from '../../config/index.ts';
import { Objects } from '../../core/aws/objects.ts';
import { Queues } from '../../core/aws/queues.ts';
import { EcsTaskLauncher } from '../../core/aws/ecs-launcher.ts';
import { resourceEnv } from '../../core/env.ts';
import { JobStore } from '../../core/jobs.ts';
import type { TaskLauncher } from '../../core/launcher.ts';
import type { PipelineDeps } from '../../core/pipeline.ts';

/** Builds the pipeline's dependencies from the environment the CDK stack (or the local runtime) sets. */
export function depsFromEnv(launcher: TaskLauncher = new EcsTaskLauncher()): PipelineDeps {
  const env = resourceEnv();
  return {
    env,
    limits: getStage(env.stage).limits,
    jobs: new JobStore(env.table),
    objects: new Objects(env.bucket),
    queues: new Queues(),
    launcher,
  };
}
