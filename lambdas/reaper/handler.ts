import type { Context } from 'aws-lambda';
import { depsFromEnv, type PipelineDeps } from '../../core/deps.ts';
import { reap, type ReapReport } from '../../core/reaper/reaper.ts';
import { lambda } from '../shared/middleware.ts';

/** Reaper Lambda (EventBridge Scheduler, every few minutes): relaunch stalled jobs, stop idle tasks, delete orphan queues. */
export function createReaperHandler(deps: PipelineDeps) {
  return lambda(async (): Promise<ReapReport> => reap(deps));
}

let cached: ReturnType<typeof createReaperHandler> | undefined;
export const handler = (event: unknown, context: Context) =>
  (cached ??= createReaperHandler(depsFromEnv()))(event, context);
