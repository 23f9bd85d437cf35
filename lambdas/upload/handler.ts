import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { onUploadEvent, startDirectJob, startPresignedJob } from '../../core/intake/operations.ts';
import { directJobQuery, jobRequestFromJsonBody } from '../../core/intake/request.ts';
import { checkDirectJob } from '../../core/intake/check.ts';
import { cancelJob } from '../../core/intake/cancel.ts';
import { directUploadBytes } from '../../core/intake/upload-body.ts';
import { retryFailedRecords } from '../../core/intake/rerun-failed.ts';
import { resubmitRecords } from '../../core/intake/resubmit.ts';
import { depsFromEnv, type PipelineDeps } from '../../core/deps.ts';
import { callerSite, httpApi, json, requestBody } from '../shared/http.ts';
import { lambda } from '../shared/middleware.ts';

type UploadEvent = APIGatewayProxyEvent | SQSEvent;

/**
 * Upload Lambda, the API's writes: POST /jobs (the CSV in the body, split inline; with ?check=true only read, nothing
 * created), POST /uploads (a presigned S3 POST), DELETE /jobs/{token} (cancel), POST /jobs/{token}/retry (the job's
 * next attempt, of the records a retry may run), POST /jobs/{token}/resubmit (the next attempt, of the corrected rows
 * of the user's results.csv);
 * and the upload-events queue (S3 notifications of presigned uploads → split; grant-pass requests → the worker
 * budget grants what is free: this function is the one that launches workers). A failed message is reported for
 * redelivery (Powertools batch); the others of the batch are kept.
 */
export function createUploadHandler(deps: PipelineDeps) {
  const api = httpApi([
    {
      method: 'POST',
      path: '/jobs',
      handler: async (e: APIGatewayProxyEvent) => {
        const { check, input } = directJobQuery(e.queryStringParameters);
        const site = callerSite(e);
        // ?check=true: the file read as the split would, nothing created (core/intake/check.ts).
        if (check) return json(200, await checkDirectJob(deps, site, directUploadBytes(e), input));
        const view = await startDirectJob(deps, site, directUploadBytes(e), input);
        return json(view.state === 'REJECTED' ? 422 : 202, view);
      },
    },
    {
      method: 'POST',
      path: '/uploads',
      handler: async (e: APIGatewayProxyEvent) => {
        const input = jobRequestFromJsonBody(requestBody(e).toString('utf8'), e.queryStringParameters);
        return json(201, await startPresignedJob(deps, callerSite(e), input));
      },
    },
    {
      method: 'DELETE',
      path: '/jobs/{token}',
      handler: async (e: APIGatewayProxyEvent) => {
        const r = await cancelJob(deps, callerSite(e), e.pathParameters?.token ?? '');
        return json(r.status, r.view);
      },
    },
    {
      method: 'POST',
      path: '/jobs/{token}/retry',
      handler: async (e: APIGatewayProxyEvent) =>
        json(202, await retryFailedRecords(deps, callerSite(e), e.pathParameters?.token ?? '')),
    },
    {
      method: 'POST',
      path: '/jobs/{token}/resubmit',
      handler: async (e: APIGatewayProxyEvent) => {
        const site = callerSite(e);
        const body = directUploadBytes(e, 'POST /jobs/{token}/resubmit');
        return json(202, await resubmitRecords(deps, site, e.pathParameters?.token ?? '', body));
      },
    },
  ]);
  const processor = new BatchProcessor(EventType.SQS);
  const split = (record: SQSRecord) => onUploadEvent(deps, record.body);
  const events = lambda(async (event: SQSEvent, context: Context) =>
    processPartialResponse(event, split, processor, { context, throwOnFullBatchFailure: false }),
  );
  return (
    event: UploadEvent,
    context: Context,
  ): Promise<APIGatewayProxyResult | { batchItemFailures: unknown[] }> =>
    'Records' in event ? events(event, context) : api(event, context);
}

let cached: ReturnType<typeof createUploadHandler> | undefined;
export const handler = (event: UploadEvent, context: Context) =>
  (cached ??= createUploadHandler(depsFromEnv()))(event, context);
