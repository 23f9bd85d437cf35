import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { httpApi } from '../../../../lambdas/shared/http.ts';
import { localContext } from '../../../../lambdas/shared/middleware.ts';
import {
  BadRequestError,
  FileRejectedError,
  HttpError,
  NotFoundError,
} from '../../../../core/shared/errors.ts';

/** The answer of an HTTP function whose one route throws `err`. */
async function answerTo(err: Error): Promise<{ status: number; error: Record<string, unknown> }> {
  const api = httpApi([
    {
      method: 'GET',
      path: '/fail',
      handler: async () => {
        throw err;
      },
    },
  ]);
  const event = {
    httpMethod: 'GET',
    path: '/fail',
    resource: '/fail',
    headers: {},
    requestContext: { authorizer: { site: 'sakai' }, httpMethod: 'GET', resourcePath: '/fail' },
  } as unknown as APIGatewayProxyEvent;
  const r: APIGatewayProxyResult = await api(event, localContext('api'));
  return { status: r.statusCode, error: (JSON.parse(r.body) as { error: Record<string, unknown> }).error };
}

describe('Function: httpApi (bad input is refused with its status and code)', () => {
  it('answers a rejected file with 422, its code and the line of the problem', async () => {
    // Prepare
    const err = new FileRejectedError('HEADER_TOO_LARGE', 'the header is too large', 1);

    // Act
    const r = await answerTo(err);

    // Assess
    expect(r).toEqual({
      status: 422,
      error: { code: 'HEADER_TOO_LARGE', message: 'the header is too large', line: 1 },
    });
  });

  it('answers a rejected file without a line with no line', async () => {
    // Prepare
    const err = new FileRejectedError('EMPTY_FILE', 'the file is empty');

    // Act
    const r = await answerTo(err);

    // Assess
    expect(r).toEqual({ status: 422, error: { code: 'EMPTY_FILE', message: 'the file is empty' } });
  });

  it('answers a bad request with its own status and code', async () => {
    // Prepare
    const errors = [
      new BadRequestError('INVALID_REQUEST', 'workers: too big'),
      new BadRequestError('PAYLOAD_TOO_LARGE', 'too large', 413),
    ];

    // Act
    const answers = await Promise.all(errors.map(answerTo));

    // Assess
    expect(answers).toEqual([
      { status: 400, error: { code: 'INVALID_REQUEST', message: 'workers: too big' } },
      { status: 413, error: { code: 'PAYLOAD_TOO_LARGE', message: 'too large' } },
    ]);
  });

  it('answers an unknown job or route with 404 NOT_FOUND', async () => {
    // Prepare
    const err = new NotFoundError('No job x.');

    // Act
    const r = await answerTo(err);

    // Assess
    expect(r).toEqual({ status: 404, error: { code: 'NOT_FOUND', message: 'No job x.' } });
  });

  it('answers an error with the status and code it carries, with no mapping of its own', async () => {
    // Prepare: a kind of refusal the API has never seen
    class ConflictError extends HttpError {
      readonly status = 409;
      readonly code = 'JOB_CONFLICT';
    }

    // Act
    const r = await answerTo(new ConflictError('the job moved on'));

    // Assess
    expect(r).toEqual({ status: 409, error: { code: 'JOB_CONFLICT', message: 'the job moved on' } });
  });

  it('answers anything else with 500 INTERNAL, its details kept out of the answer', async () => {
    // Prepare
    const err = new Error('secret detail');

    // Act
    const r = await answerTo(err);

    // Assess
    expect(r).toEqual({ status: 500, error: { code: 'INTERNAL', message: 'Internal error; see the logs.' } });
  });
});
