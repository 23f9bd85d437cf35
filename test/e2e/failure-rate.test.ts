/**
 * maxFailureRate (issue 11): a file whose every record fails, with maxFailureRate=0.1, stops early — long before its
 * last record — and ends FAILED with the code FAILURE_RATE_EXCEEDED in the job's view and in the job-outcome
 * notification; every record is still accounted for (processed and failed, or never processed as STOPPED_EARLY).
 * Every record fails for real: the shipped `webhook` processor refuses each one (WEBHOOK_NOT_CONFIGURED) when no
 * URL is set, after taking its turn from the stage-wide 50/s limiter — so all 5,000 records would take ~100 s.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { snsClient, sqsClient } from '../../core/aws/clients.ts';
import type { JobView } from '../../core/intake/operations.ts';
import { MIN_FAILURE_SAMPLE } from '../../core/stop/rules.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { LocalRuntime } from '../../local/runtime.ts';

vi.hoisted(() => {
  // The local workers inherit this environment: with no URL the webhook processor refuses every record.
  delete process.env.ROWFLEET_WEBHOOK_URL;
});

const RECORDS = 5000;

let dir = '';
let rt: LocalRuntime;
let token = '';
let inbox = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-failure-rate-'));
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
  token = await rt.issueToken('sakai');
  // The job-outcome topic's messages, into a queue of our own.
  inbox = (await sqsClient().send(new CreateQueueCommand({ QueueName: 'outcomes-inbox' }))).QueueUrl!;
  const arn = (
    await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: inbox, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  await snsClient().send(
    new SubscribeCommand({
      TopicArn: process.env.JOBS_TOPIC_ARN!,
      Protocol: 'sqs',
      Endpoint: arn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
});

afterAll(async () => {
  await rt?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function get<T>(path: string): Promise<T> {
  return (await (
    await fetch(rt.apiUrl + path, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as T;
}

describe('Scenario: maxFailureRate=0.1 on a file where every record fails', () => {
  it('ends FAILED FAILURE_RATE_EXCEEDED long before its last record, in the view and in the notification', async () => {
    // Prepare
    const csv =
      'id,email\n' + Array.from({ length: RECORDS }, (_, i) => `${i + 1},u${i + 1}@example.com`).join('\n');
    writeFileSync(join(dir, 'all-fail.csv'), csv + '\n');
    const t0 = Date.now();

    // Act
    const res = await fetch(`${rt.apiUrl}/jobs?processor=webhook&maxFailureRate=0.1&fileName=all-fail.csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      body: csv + '\n',
    });
    const started = (await res.json()) as JobView;
    let view = started;
    while (!isTerminal(view.state) && Date.now() - t0 < 90_000) {
      await new Promise((r) => setTimeout(r, 100));
      view = await get<JobView>(`/jobs/${started.token}`);
    }
    const seconds = (Date.now() - t0) / 1000;
    const errors = await get<{ total: number; errors: { code: string }[] }>(
      `/jobs/${started.token}/errors?limit=100`,
    );
    const last = await get<{ errors: { code: string; record: number }[] }>(
      `/jobs/${started.token}/errors?limit=1&offset=${RECORDS - 1}`,
    );
    const notes: { token: string; state: string; error?: { code: string }; rows: { failed: number } }[] = [];
    for (let empty = 0; empty < 3 && !notes.some((n) => n.token === started.token);) {
      const r = await sqsClient().send(
        new ReceiveMessageCommand({ QueueUrl: inbox, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      if (!r.Messages?.length) empty++;
      for (const m of r.Messages ?? []) notes.push(JSON.parse(m.Body!) as (typeof notes)[number]);
    }

    // Assess
    const processed = Number(
      /(\d+) records were processed before the stop/.exec(view.error?.message ?? '')?.[1],
    );
    process.stderr.write(
      `failure rate: FAILED after ${seconds.toFixed(1)} s, ${processed} of ${RECORDS} records processed\n`,
    );
    expect(res.status).toBe(202);
    expect(view.state).toBe('FAILED');
    expect(view.error?.code).toBe('FAILURE_RATE_EXCEEDED');
    expect(view.error?.message).toMatch(/more than maxFailureRate 0\.1/);
    expect(view.rows).toEqual({ total: RECORDS, succeeded: 0, failed: RECORDS, rejected: 0 });
    // Long before the last record: a tenth of the file at most was processed (the rest would take ~90 s more).
    expect(processed).toBeGreaterThanOrEqual(MIN_FAILURE_SAMPLE);
    expect(processed).toBeLessThan(RECORDS / 10);
    expect(errors.total).toBe(RECORDS);
    expect(new Set(errors.errors.slice(0, 50).map((e) => e.code))).toEqual(
      new Set(['WEBHOOK_NOT_CONFIGURED']),
    );
    expect(last.errors).toEqual([expect.objectContaining({ code: 'STOPPED_EARLY', record: RECORDS })]);
    expect(notes.filter((n) => n.token === started.token)).toEqual([
      expect.objectContaining({
        state: 'FAILED',
        error: expect.objectContaining({ code: 'FAILURE_RATE_EXCEEDED' }),
      }),
    ]);
  }, 120_000);
});
