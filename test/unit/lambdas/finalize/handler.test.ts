import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SQSEvent } from 'aws-lambda';
import type { PipelineDeps } from '../../../../core/deps.ts';
import { createFinalizeHandler } from '../../../../lambdas/finalize/handler.ts';
import { localContext } from '../../../../lambdas/shared/middleware.ts';
import { logger } from '../../../../core/shared/log.ts';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  // What Lambda sets in an on-demand sandbox: Powertools reports cold starts only there.
  process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
});

const SITE = 'sakai';
const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';
const event = (body: string): SQSEvent =>
  ({
    Records: [{ messageId: 'm-1', body, receiptHandle: 'r', eventSource: 'aws:sqs' }],
  }) as unknown as SQSEvent;

let lines: Record<string, unknown>[] = [];
/** The Console the process-wide Powertools logger prints through (every line of core goes through it). */
const sink = (
  logger as unknown as { console: Record<'info' | 'warn' | 'error' | 'debug', (s: string) => void> }
).console;
beforeEach(() => {
  lines = [];
  for (const method of ['info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(sink, method).mockImplementation((text: string) => {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    });
  }
});
afterEach(() => vi.restoreAllMocks());

/** Deps whose job store answers as a test needs; nothing else is reached. */
const depsWith = (jobs: Partial<PipelineDeps['jobs']>) =>
  ({
    env: { stage: 'local' },
    timings: { finalizeTimeoutSeconds: 60, queueMarginSeconds: 30 },
    jobs,
  }) as unknown as PipelineDeps;

describe('Handler: finalize (logs)', () => {
  it('puts the request id and the cold-start flag in every line, the per-job child loggers included', async () => {
    // Prepare: a finalize request for a job another finalize holds (core logs through a job logger)
    const handler = createFinalizeHandler(
      depsWith({ beginFinalize: async () => undefined, get: async () => undefined }),
    );
    const first = localContext('rowfleet-finalize');
    const second = localContext('rowfleet-finalize');

    // Act
    await handler(event(JSON.stringify({ site: SITE, token: TOKEN })), first);
    const fromFirst = lines.splice(0);
    await handler(event(JSON.stringify({ site: SITE, token: TOKEN })), second);

    // Assess
    const skipped = fromFirst.find(
      (l) => l.message === 'finalize skipped: job is not running, or another finalize holds it',
    );
    expect(skipped).toMatchObject({
      function_request_id: first.awsRequestId,
      function_name: 'rowfleet-finalize',
      cold_start: true,
      site: SITE,
      token: TOKEN,
    });
    expect(lines.find((l) => l.message?.toString().startsWith('finalize skipped'))).toMatchObject({
      function_request_id: second.awsRequestId,
      cold_start: false,
    });
  });

  it('logs a failed finalize as an Error object, stack included, and reports the message for redelivery', async () => {
    // Prepare
    const handler = createFinalizeHandler(
      depsWith({
        beginFinalize: async () => {
          throw new Error('table unavailable');
        },
      }),
    );
    const context = localContext('rowfleet-finalize');

    // Act
    const result = await handler(event(JSON.stringify({ site: SITE, token: TOKEN })), context);

    // Assess
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    const failed = lines.find((l) => l.message === 'finalize failed') as {
      error?: { stack?: string; message?: string };
    };
    expect(failed).toMatchObject({ function_request_id: context.awsRequestId, site: SITE, token: TOKEN });
    expect(failed.error?.message).toBe('table unavailable');
    expect(failed.error?.stack).toMatch(/at .*finalize/);
  });
});
