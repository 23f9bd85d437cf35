import type { APIGatewayProxyEvent, APIGatewayProxyResult, S3Event, SQSEvent } from 'aws-lambda';
import { BadRequestError } from '../../core/shared/errors.ts';
import { splitUploaded, startDirectJob, startPresignedJob, type JobRequest } from '../../core/intake/api.ts';
import { jobLogger, logger } from '../../core/shared/log.ts';
import { parseSourceKey } from '../../core/jobs/keys.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { depsFromEnv } from '../../core/deps.ts';
import { intParam, json, numberParam, requestBody, withSite } from '../shared/http.ts';

type UploadEvent = APIGatewayProxyEvent | SQSEvent | S3Event;

function jobRequest(q: Record<string, string | undefined>, body?: Record<string, unknown>): JobRequest {
  const get = (k: string) => (body?.[k] !== undefined ? String(body[k]) : q[k]);
  return {
    processor: get('processor'),
    office: get('office'),
    fileName: get('fileName'),
    workers: intParam(get('workers')),
    simulateDelayMs: numberParam(get('simulateDelayMs')),
    simulateErrorRate: numberParam(get('simulateErrorRate')),
  };
}

function s3Records(event: SQSEvent | S3Event): { key: string }[] {
  const out: { key: string }[] = [];
  for (const r of event.Records) {
    if ('s3' in r) out.push({ key: decodeURIComponent(r.s3.object.key.replace(/\+/g, ' ')) });
    else if ('body' in r) {
      const inner = JSON.parse(r.body) as Partial<S3Event>;
      for (const s of inner.Records ?? [])
        out.push({ key: decodeURIComponent(s.s3.object.key.replace(/\+/g, ' ')) });
    }
  }
  return out;
}

/** Upload Lambda: POST /jobs (direct), POST /uploads (presigned) and the S3 events that split presigned uploads. */
export function createUploadHandler(deps: PipelineDeps) {
  return async (event: UploadEvent): Promise<APIGatewayProxyResult | undefined> => {
    if ('Records' in event) {
      for (const { key } of s3Records(event)) {
        const ids = parseSourceKey(key);
        if (!ids) {
          logger.warn('ignored object outside uploads/<site>/<token>/source.csv', { key });
          continue;
        }
        const r = await splitUploaded(deps, ids.site, ids.token);
        jobLogger(ids.site, ids.token).info('split from S3 event', { state: r.state });
      }
      return undefined;
    }
    return withSite(event, async (site) => {
      const q = event.queryStringParameters ?? {};
      if (event.httpMethod === 'POST' && event.resource === '/jobs') {
        const view = await startDirectJob(deps, site, requestBody(event), jobRequest(q));
        if (view.state === 'REJECTED') return json(422, { ...view, error: view.error });
        return json(202, view);
      }
      if (event.httpMethod === 'POST' && event.resource === '/uploads') {
        let body: Record<string, unknown>;
        try {
          body = event.body
            ? (JSON.parse(requestBody(event).toString('utf8')) as Record<string, unknown>)
            : {};
        } catch {
          throw new BadRequestError(
            'INVALID_JSON',
            'The body of POST /uploads must be JSON, e.g. {"fileName":"a.csv"}.',
          );
        }
        return json(201, await startPresignedJob(deps, site, jobRequest(q, body)));
      }
      return json(404, { error: { code: 'NO_ROUTE', message: `${event.httpMethod} ${event.resource}` } });
    });
  };
}

let cached: ReturnType<typeof createUploadHandler> | undefined;
export const handler = (event: UploadEvent) => (cached ??= createUploadHandler(depsFromEnv()))(event);
