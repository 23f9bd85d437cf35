import { z } from 'zod';
import { siteId } from '../../config/schema.ts';
import type { PipelineDeps } from '../deps.ts';
import { isJobToken } from '../jobs/keys.ts';
import { TRACEPARENT_RE } from '../shared/trace.ts';

/** The message a finalize request carries (finalize queue): the worker or split that completes a job sends it. */
export const finalizeRequestSchema = z.object({
  site: siteId,
  token: z.string().refine(isJobToken, 'a job token (UUID)'),
  /** The attempt whose last chunk was counted (core/jobs/attempts.ts); absent: the job's current attempt. */
  attempt: z.number().int().min(1).optional(),
  /** The sender's span (W3C traceparent): the finalize span links to it. Absent from older senders. */
  traceparent: z.string().regex(TRACEPARENT_RE).optional(),
});

export type FinalizeRequest = z.infer<typeof finalizeRequestSchema>;

export async function requestFinalize(
  deps: Pick<PipelineDeps, 'env' | 'queues'>,
  req: FinalizeRequest,
): Promise<void> {
  await deps.queues.sendOne(deps.env.finalizeQueueUrl, JSON.stringify(req), req.site, req.token);
}

/** A finalize request from its message body; throws for anything else (the message goes to the DLQ). */
export function parseFinalizeRequest(body: string): FinalizeRequest {
  return finalizeRequestSchema.parse(JSON.parse(body));
}
