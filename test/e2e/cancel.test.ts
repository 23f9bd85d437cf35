/**
 * Cancel (issue 11): DELETE /jobs/{token} on a 100,000-record job with a delay per record, through the local API and
 * the real local runtime (workers as processes). The job must end CANCELLED within 10 s, with no worker process left
 * and its queue deleted; the records done before the cancel are in the zip exactly once, every other record is in
 * errors.csv as CANCELLED (so succeeded + failed + rejected = total), and a retry runs exactly those again as the
 * job's second attempt (one at a time: a second retry while it runs answers 409 ATTEMPT_RUNNING).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../core/intake/operations.ts';
import { reportQueueName } from '../../core/jobs/keys.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { startJob } from '../../cli/run-job.ts';
import { readZip } from '../helpers/zip.ts';

const RECORDS = 100_000;

let dir = '';
let rt: LocalRuntime;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-cancel-'));
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
  tokens.sakai = await rt.issueToken('sakai');
  tokens.kawasaki = await rt.issueToken('kawasaki');
});

afterAll(async () => {
  await rt?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api<T>(site: string, method: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(rt.apiUrl + path, { method, headers: { authorization: `Bearer ${tokens[site]}` } });
  return { status: res.status, body: (await res.json()) as T };
}

/** Polls the job every 50 ms until `until` holds; answers the view and when it held. */
async function waitFor(token: string, until: (v: JobView) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api<JobView>('sakai', 'GET', `/jobs/${token}`);
    if (until(body)) return { view: body, at: Date.now() };
    if (Date.now() > deadline) throw new Error(`job ${token}: timed out at ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Scenario: cancel a 100,000-record job mid-run', () => {
  it('ends CANCELLED within 10 s, no worker left, queue deleted, every record once in the zip or in errors.csv', async () => {
    // Prepare: 100,000 records × 50 ms, 10 in flight per worker, 2 workers: minutes of work (above the direct
    // limit, so it goes through the presigned POST)
    const file = join(dir, 'big.csv');
    await writeSampleCsv(file, RECORDS);
    const started = await startJob({
      apiUrl: rt.apiUrl,
      apiToken: tokens.sakai!,
      file,
      processor: 'json',
      workers: 2,
      simulateDelayMs: 50,
      request: { concurrency: 10 },
      outDir: join(dir, 'out'),
      directMaxBytes: 4_500_000,
      progress: false,
    });
    const { token } = started;
    const running = await waitFor(token, (v) => v.state === 'RUNNING' && v.progress.chunksDone >= 3);

    // Act
    const asked = Date.now();
    const cancel = await api<JobView>('sakai', 'DELETE', `/jobs/${token}`);
    const ended = await waitFor(token, (v) => isTerminal(v.state), 30_000);
    const seconds = (ended.at - asked) / 1000;
    const workersLeft = rt.launcher.running(token);
    const queue = await rt.deps.queues.queueUrl(reportQueueName(rt.stage, token));
    const again = await api<JobView>('sakai', 'DELETE', `/jobs/${token}`);
    const otherSite = await api<{ error: { code: string } }>('kawasaki', 'DELETE', `/jobs/${token}`);
    const zip = await readZip(Buffer.from(await (await fetch(ended.view.download!.url)).arrayBuffer()));

    // Assess: the cancel
    process.stderr.write(
      `cancel: ${running.view.progress.done} records done when asked; CANCELLED after ${seconds.toFixed(2)} s; ` +
        `${ended.view.rows.succeeded} succeeded, ${ended.view.rows.failed} not processed\n`,
    );
    expect(cancel.status).toBe(202);
    expect(ended.view.state).toBe('CANCELLED');
    expect(seconds).toBeLessThan(10);
    expect(workersLeft).toEqual([]);
    expect(queue).toBeUndefined();
    expect(again).toMatchObject({ status: 200, body: { state: 'CANCELLED' } });
    expect(otherSite).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect(ended.view.error?.code).toBe('CANCELLED');

    // Assess: the zip — the manifest says cancelled, the counts add up, every record is in exactly one place
    const manifest = JSON.parse(zip.find((e) => e.name === 'manifest.json')!.data.toString('utf8')) as {
      state: string;
      counts: { total: number; succeeded: number; failed: number; rejected: number };
      stop: { reason: string };
    };
    const rows = zip.filter((e) => e.name.startsWith('rows/')).map((e) => Number(/(\d+)/.exec(e.name)![1]));
    const errors = parse(
      zip
        .find((e) => e.name === 'errors.csv')!
        .data.toString('utf8')
        .replace(/^\uFEFF/, ''),
      {
        columns: true,
      },
    ) as { line: string; record: string; code: string }[];
    const c = manifest.counts;
    expect(manifest).toMatchObject({ state: 'CANCELLED', stop: { reason: 'CANCELLED' } });
    expect(c.total).toBe(RECORDS);
    expect(c.succeeded + c.failed + c.rejected).toBe(RECORDS);
    expect(c.succeeded).toBeGreaterThanOrEqual(running.view.progress.done);
    expect(c.succeeded).toBeLessThan(RECORDS);
    expect(new Set(rows).size).toBe(rows.length);
    expect(rows.length).toBe(c.succeeded);
    expect(errors.every((e) => e.code === 'CANCELLED')).toBe(true);
    expect(errors.length).toBe(c.failed);
    const seen = new Uint8Array(RECORDS + 1);
    for (const n of [...rows, ...errors.map((e) => Number(e.record))]) seen[n]!++;
    expect(seen.subarray(1).every((x) => x === 1)).toBe(true);
    // The sample has no quoted newlines: record n is on line n + 1.
    expect(errors.every((e) => Number(e.line) === Number(e.record) + 1)).toBe(true);
    expect(ended.view.rows).toEqual(c);
  }, 180_000);

  it('answers 409 to a cancel of a finished job, and a retry re-runs the records a cancel left', async () => {
    // Prepare: a small finished job, and a cancelled one (the one above is in the same runtime's table)
    const small = await startJob({
      apiUrl: rt.apiUrl,
      apiToken: tokens.sakai!,
      file: await (async () => {
        const f = join(dir, 'small.csv');
        await writeSampleCsv(f, 20);
        return f;
      })(),
      processor: 'json',
      outDir: join(dir, 'out'),
      directMaxBytes: 4_500_000,
      progress: false,
    });
    const done = await waitFor(small.token, (v) => isTerminal(v.state));
    const jobs = (await api<{ jobs: JobView[] }>('sakai', 'GET', '/jobs')).body.jobs;
    const cancelled = jobs.find((j) => j.state === 'CANCELLED')!;

    // Act
    const finished = await api<{ error: { code: string } }>('sakai', 'DELETE', `/jobs/${small.token}`);
    const nothing = await api<{ error: { code: string } }>('sakai', 'POST', `/jobs/${small.token}/retry`);
    type Answer = { status: number; body: JobView & { error?: { code: string; message: string } } };
    const both: Answer[] = await Promise.all([
      api<Answer['body']>('sakai', 'POST', `/jobs/${cancelled.token}/retry`),
      api<Answer['body']>('sakai', 'POST', `/jobs/${cancelled.token}/retry`),
    ]);
    const retry = both.find((a) => a.status === 202) ?? both[0]!;
    const second = both.find((a) => a !== retry)!;
    const errors = await api<{ total: number; errors: { code: string; record: number; line: number }[] }>(
      'sakai',
      'GET',
      `/jobs/${cancelled.token}/errors?limit=3`,
    );
    const retryCancel = await api<JobView>('sakai', 'DELETE', `/jobs/${retry.body.token}`);
    const after = await waitFor(retry.body.token, (v) => isTerminal(v.state));

    // Assess
    expect(done.view.state).toBe('SUCCEEDED');
    expect(finished).toMatchObject({ status: 409, body: { error: { code: 'JOB_FINISHED' } } });
    expect(nothing).toMatchObject({ status: 409, body: { error: { code: 'NOTHING_TO_RETRY' } } });
    expect(retry.status).toBe(202);
    expect(retry.body).toMatchObject({ token: cancelled.token, progress: { total: RECORDS } });
    expect(retry.body.attempts.map((a) => [a.n, a.records])).toEqual([
      [1, RECORDS],
      [2, cancelled.rows.failed],
    ]);
    expect(second).toMatchObject({ status: 409, body: { error: { code: 'ATTEMPT_RUNNING' } } });
    expect(second.body.error?.message).toContain('attempt 2');
    expect(errors.body.total).toBe(cancelled.rows.failed);
    expect(errors.body.errors).toHaveLength(3);
    expect(errors.body.errors.every((e) => e.code === 'CANCELLED' && e.line === e.record + 1)).toBe(true);
    expect(retryCancel.status).toBe(202);
    // The cancelled attempt: the job's counts still add up over both attempts, and a retry may run the rest
    const r = after.view.rows;
    expect(after.view.state).toBe('CANCELLED');
    expect(r.succeeded + r.failed + r.rejected).toBe(RECORDS);
    expect(r.succeeded).toBeGreaterThanOrEqual(cancelled.rows.succeeded);
    expect(after.view.attempts.map((a) => [a.n, a.state])).toEqual([
      [1, 'CANCELLED'],
      [2, 'CANCELLED'],
    ]);
    expect(after.view.retryable).toBe(r.failed);
  }, 120_000);
});
