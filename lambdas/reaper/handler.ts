import { depsFromEnv } from '../../core/deps.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { reap, type ReapReport } from '../../core/ops/reaper.ts';

/** Reaper Lambda (EventBridge Scheduler, every few minutes): relaunch stalled jobs, stop idle tasks, delete orphan queues. */
export function createReaperHandler(deps: PipelineDeps) {
  return async (): Promise<ReapReport> => reap(deps);
}

let cached: ReturnType<typeof createReaperHandler> | undefined;
export const handler = () => (cached ??= createReaperHandler(depsFromEnv()))();
