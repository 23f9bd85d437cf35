import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES, type ApiRouteSpec } from '../../config/routes.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { createConsoleHandler } from '../../lambdas/console/handler.ts';
import { localContext } from '../../lambdas/shared/middleware.ts';
import { createStatusHandler } from '../../lambdas/status/handler.ts';
import { createUploadHandler } from '../../lambdas/upload/handler.ts';
import { buildConsole } from '../../web/build.ts';

/**
 * config/routes.ts is the one route table: API Gateway's methods and the local API are built from it. Each function's
 * own router must answer exactly the routes the table gives it (and no other), or a route would reach a function
 * that answers "No route". Probed without a site in the request context: a route the router knows answers 401
 * (the site is asked for first), /health 200, the console its files; one it does not know answers 404.
 */
const deps = { env: { stage: 'dev' } } as unknown as PipelineDeps;
let consoleDir = '';

beforeAll(async () => {
  consoleDir = mkdtempSync(join(tmpdir(), 'rowfleet-routes-'));
  await buildConsole({ outDir: consoleDir });
});
afterAll(() => rmSync(consoleDir, { recursive: true, force: true }));

const functions = {
  upload: () => createUploadHandler(deps),
  status: () => createStatusHandler(deps),
  console: () => createConsoleHandler(consoleDir, 'https://bucket.s3.ap-northeast-1.amazonaws.com'),
} satisfies Record<ApiRouteSpec['function'], unknown>;

function eventFor(route: ApiRouteSpec): APIGatewayProxyEvent {
  const path = route.path
    .replace('{token}', '0b6c3b0e-6c1e-4d0e-9d3e-2f7a4c5b6d7e')
    .replace('{proxy+}', 'app.js');
  return {
    resource: route.path,
    path,
    httpMethod: route.method,
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { authorizer: null },
  } as unknown as APIGatewayProxyEvent;
}

describe('Routes: config/routes.ts and the functions that serve them', () => {
  const cases = (Object.keys(functions) as (keyof typeof functions)[]).flatMap((fn) =>
    API_ROUTES.map((route) => [fn, `${route.method} ${route.path}`, route] as const),
  );

  it.each(cases)('%s answers %s exactly when the table gives it the route', async (fn, _name, route) => {
    // Prepare
    const handler = functions[fn]() as (e: unknown, c: unknown) => Promise<APIGatewayProxyResult>;

    // Act
    const r = await handler(eventFor(route), localContext(fn));

    // Assess
    // The console's bare path redirects to its index (console/), its files answer 200.
    const own =
      route.function === 'console' ? (route.path === '/console' ? 308 : 200) : route.auth ? 401 : 200;
    const expected = route.function === fn ? own : 404;
    expect(r.statusCode, r.body).toBe(expected);
  });

  it('puts every route but /health and the console behind the authorizer', () => {
    // Assess
    const open = API_ROUTES.filter((r) => !r.auth).map((r) => `${r.method} ${r.path}`);
    expect(open).toEqual(['GET /health', 'GET /console', 'GET /console/{proxy+}']);
  });
});
