import type { PipelineDeps } from '../deps.ts';

/** The message a finalize request carries (finalize queue): the worker or split that completes a job sends it. */
export interface FinalizeRequest {
  readonly site: string;
  readonly token: string;
}

export async function requestFinalize(deps: PipelineDeps, req: FinalizeRequest): Promise<void> {
  await deps.queues.sendOne(deps.env.finalizeQueueUrl, JSON.stringify(req), req.site, req.token);
}
