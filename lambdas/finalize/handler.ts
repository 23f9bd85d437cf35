import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { errorMessage } from '../../core/shared/errors.ts';
import { finalizeJob } from '../../core/finalize/finalize.ts';
import { logger } from '../../core/shared/log.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import type { FinalizeRequest } from '../../core/messages/finalize-request.ts';
import { depsFromEnv } from '../../core/deps.ts';

/** Finalize Lambda (finalize queue): one zip per job; failed records are reported for redelivery. */
export function createFinalizeHandler(deps: PipelineDeps) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      try {
        const req = JSON.parse(record.body) as FinalizeRequest;
        await finalizeJob(deps, req.site, req.token);
      } catch (err) {
        logger.error('finalize failed', { messageId: record.messageId, error: errorMessage(err) });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  };
}

let cached: ReturnType<typeof createFinalizeHandler> | undefined;
export const handler = (event: SQSEvent) => (cached ??= createFinalizeHandler(depsFromEnv()))(event);
