import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { getJobView } from '../../core/intake/operations.ts';
import { jobsPage } from '../../core/intake/job-list.ts';
import { errorsPage } from '../../core/intake/error-rows.ts';
import { usageView } from '../../core/intake/usage-view.ts';
import { timelineView } from '../../core/intake/timeline.ts';
import { resultsDownload } from '../../core/intake/results-download.ts';
import { depsFromEnv, type PipelineDeps } from '../../core/deps.ts';
import { callerSite, httpApi, json } from '../shared/http.ts';

/**
 * Status Lambda, the API's reads: GET /health, GET /jobs, GET /jobs/{token}, GET /jobs/{token}/errors,
 * GET /jobs/{token}/timeline (the local runtime's span store), GET /jobs/{token}/results (a download URL of the
 * latest results.csv), GET /usage —
 * only ever the caller's site.
 */
export function createStatusHandler(deps: PipelineDeps) {
  return httpApi([
    {
      method: 'GET',
      path: '/health',
      handler: async () => json(200, { status: 'ok', stage: deps.env.stage }),
    },
    {
      method: 'GET',
      path: '/jobs',
      handler: async (e: APIGatewayProxyEvent) =>
        json(200, await jobsPage(deps, callerSite(e), e.queryStringParameters)),
    },
    {
      method: 'GET',
      path: '/jobs/{token}',
      handler: async (e: APIGatewayProxyEvent) =>
        json(200, await getJobView(deps, callerSite(e), e.pathParameters?.token ?? '')),
    },
    {
      method: 'GET',
      path: '/jobs/{token}/errors',
      handler: async (e: APIGatewayProxyEvent) =>
        json(
          200,
          await errorsPage(deps, callerSite(e), e.pathParameters?.token ?? '', e.queryStringParameters),
        ),
    },
    {
      method: 'GET',
      path: '/jobs/{token}/timeline',
      handler: async (e: APIGatewayProxyEvent) =>
        json(200, await timelineView(deps, callerSite(e), e.pathParameters?.token ?? '')),
    },
    {
      method: 'GET',
      path: '/jobs/{token}/results',
      handler: async (e: APIGatewayProxyEvent) =>
        json(200, await resultsDownload(deps, callerSite(e), e.pathParameters?.token ?? '')),
    },
    {
      method: 'GET',
      path: '/usage',
      handler: async (e: APIGatewayProxyEvent) =>
        json(200, await usageView(deps, callerSite(e), e.queryStringParameters)),
    },
  ]);
}

let cached: ReturnType<typeof createStatusHandler> | undefined;
export const handler = (event: APIGatewayProxyEvent, context: Context) =>
  (cached ??= createStatusHandler(depsFromEnv()))(event, context);
