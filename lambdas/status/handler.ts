import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { getJobView, listJobViews } from '../../core/intake/api.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { depsFromEnv } from '../../core/deps.ts';
import { json, withSite } from '../shared/http.ts';

/** Status Lambda: GET /health, GET /jobs, GET /jobs/{token} — only ever the caller's site. */
export function createStatusHandler(deps: PipelineDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    if (event.resource === '/health') return json(200, { status: 'ok', stage: deps.env.stage });
    return withSite(event, async (site) => {
      if (event.resource === '/jobs/{token}')
        return json(200, await getJobView(deps, site, event.pathParameters?.token ?? ''));
      if (event.resource === '/jobs') return json(200, { jobs: await listJobViews(deps, site) });
      return json(404, { error: { code: 'NO_ROUTE', message: `${event.httpMethod} ${event.resource}` } });
    });
  };
}

let cached: ReturnType<typeof createStatusHandler> | undefined;
export const handler = (event: APIGatewayProxyEvent) =>
  (cached ??= createStatusHandler(depsFromEnv()))(event);
