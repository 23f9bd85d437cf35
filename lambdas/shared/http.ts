import httpErrorHandler from '@middy/http-error-handler';
import httpRouterHandler, { type Route } from '@middy/http-router';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { HttpError, NotFoundError } from '../../core/shared/errors.ts';
import { logger } from '../../core/shared/log.ts';
import { lambda } from './middleware.ts';
import { echoed } from '../../core/shared/own.ts';

export type ApiRoute = Route<APIGatewayProxyEvent, APIGatewayProxyResult>;

/** The JSON error body of every answer the API gives: `{ error: { code, message, line?, …what it names } }`. */
const errorBody = (
  code: string,
  message: string,
  line?: number,
  details?: Readonly<Record<string, unknown>>,
) => JSON.stringify({ error: { ...details, code, message, ...(line ? { line } : {}) } });

export function json(statusCode: number, body: unknown): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}

/** A request without a site in its authorizer context (401): the API Gateway authorizer always sets one. */
class UnauthenticatedError extends HttpError {
  readonly status = 401;
  readonly code = 'UNAUTHENTICATED';
}

/** The caller's site, as the authorizer put it in the request context. Never from the body or the query. */
export function callerSite(event: APIGatewayProxyEvent): string {
  const site = (event.requestContext?.authorizer as { site?: unknown } | null | undefined)?.site;
  if (typeof site === 'string' && site !== '') return site;
  throw new UnauthenticatedError('A bearer token bound to a site is required.');
}

export function requestBody(event: APIGatewayProxyEvent): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

/** The HTTP status of a typed domain error (and its code), or undefined for anything else. */
function statusOf(err: unknown): { status: number; body: string } | undefined {
  if (!(err instanceof HttpError)) return undefined;
  return { status: err.status, body: errorBody(err.code, err.message, err.line, err.details) };
}

/** Turns the domain's typed errors into HTTP errors that @middy/http-error-handler answers with. */
const domainErrors = (): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> => ({
  onError: (request) => {
    const mapped = statusOf(request.error);
    if (mapped)
      Object.assign(request.error!, { statusCode: mapped.status, expose: true, message: mapped.body });
  },
});

/**
 * An HTTP function: the routes (@middy/http-router, matched on method and path), typed errors mapped to their
 * status with a JSON error body, anything else a 500 whose details (stack included) go to the log only.
 */
export function httpApi(routes: ApiRoute[]) {
  const router = httpRouterHandler<APIGatewayProxyEvent, APIGatewayProxyResult>({
    routes,
    notFoundResponse: ({ method, path }) => {
      throw new NotFoundError(`No route ${method} ${echoed(path)}.`);
    },
  });
  return lambda<APIGatewayProxyEvent, APIGatewayProxyResult>(
    (event: APIGatewayProxyEvent, context: Context) => router(event, context),
  )
    .use(
      httpErrorHandler({
        logger: (err: unknown) => {
          const status = (err as { statusCode?: number }).statusCode;
          if (status === undefined || status >= 500) logger.error('unhandled error', { error: err as Error });
        },
        fallbackMessage: errorBody('INTERNAL', 'Internal error; see the logs.'),
      }),
    )
    .use(domainErrors());
}
