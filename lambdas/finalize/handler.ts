import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { finalizeJob } from '../../core/finalize/finalize.ts';
import { parseFinalizeRequest } from '../../core/messages/finalize-request.ts';
import { logger } from '../../core/shared/log.ts';
import { depsFromEnv, type PipelineDeps } from '../../core/deps.ts';
import { lambda } from '../shared/middleware.ts';

/**
 * Finalize Lambda (finalize queue, one request per invocation): one zip per job. A failed finalize is logged
 * with its stack and reported back for redelivery (Powertools batch); its lease was released by core.
 */
export function createFinalizeHandler(deps: PipelineDeps) {
  const processor = new BatchProcessor(EventType.SQS);
  let requestId: string | undefined;
  const finalize = async (record: SQSRecord) => {
    const req = parseFinalizeRequest(record.body);
    try {
      await finalizeJob(deps, req.site, req.token, requestId, req.attempt, req.traceparent);
    } catch (err) {
      logger.error('finalize failed', {
        messageId: record.messageId,
        site: req.site,
        token: req.token,
        error: err as Error,
      });
      throw err;
    }
  };
  return lambda(async (event: SQSEvent, context: Context) => {
    // The lease names the invocation that holds it.
    requestId = context.awsRequestId;
    return processPartialResponse(event, finalize, processor, { context, throwOnFullBatchFailure: false });
  });
}

let cached: ReturnType<typeof createFinalizeHandler> | undefined;
export const handler = (event: SQSEvent, context: Context) =>
  (cached ??= createFinalizeHandler(depsFromEnv()))(event, context);
