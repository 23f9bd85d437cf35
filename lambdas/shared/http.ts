import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { BadRequestError, FileRejectedError, NotFoundError } from '../../core/shared/errors.ts';
import { logger } from '../../core/shared/log.ts';

export function json(statusCode: number, body: unknown): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}

/** The caller's site, as the authorizer put it in the request context. Never from the body. */
export function callerSite(event: APIGatewayProxyEvent): string | undefined {
  const site = (event.requestContext?.authorizer as { site?: unknown } | null | undefined)?.site;
  return typeof site === 'string' && site !== '' ? site : undefined;
}

/** Maps typed domain errors to responses; anything else is a 500 whose details stay in the logs. */
export function errorResponse(err: unknown): APIGatewayProxyResult {
  if (err instanceof FileRejectedError)
    return json(422, { error: { code: err.code, message: err.message, line: err.line } });
  if (err instanceof BadRequestError)
    return json(err.status, { error: { code: err.code, message: err.message } });
  if (err instanceof NotFoundError) return json(404, { error: { code: err.code, message: err.message } });
  logger.error('unhandled error', { error: err as Error });
  return json(500, { error: { code: 'INTERNAL', message: 'Internal error; see the logs.' } });
}

/** Runs `fn` with the caller's site; 401 when there is none. */
export async function withSite(
  event: APIGatewayProxyEvent,
  fn: (site: string) => Promise<APIGatewayProxyResult>,
): Promise<APIGatewayProxyResult> {
  const site = callerSite(event);
  if (!site)
    return json(401, {
      error: { code: 'UNAUTHENTICATED', message: 'A bearer token bound to a site is required.' },
    });
  try {
    return await fn(site);
  } catch (err) {
    return errorResponse(err);
  }
}

export function requestBody(event: APIGatewayProxyEvent): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

export function numberParam(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n))
    throw new BadRequestError('INVALID_PARAMETER', `Expected a number, got "${value}".`);
  return n;
}

export function intParam(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n))
    throw new BadRequestError('INVALID_PARAMETER', `Expected a whole number, got "${value}".`);
  return n;
}
