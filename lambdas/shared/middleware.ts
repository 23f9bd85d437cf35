import { randomUUID } from 'node:crypto';
import middy, { type MiddyfiedHandler } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { logger } from '../../core/shared/log.ts';
import { metrics } from '../../core/shared/metrics.ts';
import { flushTracing } from '../../core/aws/tracing.ts';

/**
 * The invocation's spans are exported before it returns: after that the sandbox may freeze and the batch
 * processor's timer would not run. Bounded, so a slow trace endpoint never holds a request up for long.
 */
const flushSpans = async (request: { context: Context }) => {
  await flushTracing(Math.min(2000, Math.max(0, request.context.getRemainingTimeInMillis() - 500)));
};

/**
 * The stack every Rowfleet function runs in (middy 6: the line that runs on Node 20 and 22): Powertools'
 * `injectLambdaContext` (request id, function name and cold start in every log line, the per-job child loggers
 * included) and `logMetrics` (the cold-start metric; the pipeline's own figures are published as they happen).
 */
export function lambda<TEvent, TResult>(
  handler: (event: TEvent, context: Context) => Promise<TResult>,
): MiddyfiedHandler<TEvent, TResult, Error, Context> {
  return middy<TEvent, TResult, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use({ after: flushSpans, onError: flushSpans })
    .handler(handler);
}

/**
 * A Lambda context for an invocation outside Lambda (the local runtime, tests): a fresh request id, the
 * function's name and a remaining time of the given timeout.
 */
export function localContext(functionName: string, timeoutSeconds = 900): Context {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const awsRequestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId,
    logGroupName: `/local/${functionName}`,
    logStreamName: awsRequestId,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
