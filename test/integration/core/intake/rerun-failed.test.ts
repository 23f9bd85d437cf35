/**
 * A retry is an attempt of the same job (core/intake/rerun-failed.ts, core/jobs/attempts.ts), through core on the
 * embedded emulators: one attempt at a time, only the records a retry may run, their original numbers and lines in
 * every output, the job's idempotency scope kept (a record whose effect was claimed is never run again), and the
 * job's results and counts merged over its attempts.
 */
import { parse } from 'csv-parse/sync';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it, vi } from 'vitest';
import { derivedTimings } from '../../../../config/index.ts';
import { sqsClient } from '../../../../core/aws/clients.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { getJobView, startDirectJob } from '../../../../core/intake/operations.ts';
import { cancelJob } from '../../../../core/intake/cancel.ts';
import { errorsPage } from '../../../../core/intake/error-rows.ts';
import { retryFailedRecords } from '../../../../core/intake/rerun-failed.ts';
import { EffectClaims } from '../../../../core/effects/claims.ts';
import { reportQueueName } from '../../../../core/jobs/keys.ts';
import { reap } from '../../../../core/reaper/reaper.ts';
import type { RowInput, RowProcessor } from '../../../../core/processors/index.ts';
import { RecordingLauncher, TEST_STAGE, TEST_TIMINGS, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { KilledError, withAdapters } from '../../../helpers/faults.ts';
import { csvOf, runAttempt, runJobs } from '../../../helpers/pipeline-jobs.ts';
import { readZip } from '../../../helpers/zip.ts';
import { parseResultsCsv } from '../../../helpers/results-csv.ts';

/**
 * Two test processors beside the built-in ones: `flaky` fails the records in `failing` (a processing failure, which
 * a retry runs again), `probe` has side effects (claims). Both count the records they are asked to process.
 */
const probes = vi.hoisted(() => ({ calls: new Map<number, number>(), failing: new Set<number>() }));
vi.mock('../../../../core/processors/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../../core/processors/index.ts')>();
  const make = (name: string, sideEffects: boolean): RowProcessor => ({
    name,
    description: `test processor ${name}`,
    sideEffects,
    concurrency: 4,
    async process(row: RowInput) {
      probes.calls.set(row.n, (probes.calls.get(row.n) ?? 0) + 1);
      await Promise.resolve();
      // A processing failure that says nothing happened (with side effects: its claim is settled FAILED).
      if (probes.failing.has(row.n))
        throw new real.RecordError('PROCESSING_FAILED', `record ${row.n} failed`);
      return [
        {
          name: `rows/${row.n}.json`,
          data: JSON.stringify({ n: row.n, line: row.line, fields: row.fields }),
        },
      ];
    },
  });
  const test = new Map([
    ['flaky', make('flaky', false)],
    ['probe', make('probe', true)],
  ]);
  return {
    ...real,
    loadProcessor: (name: string) => Promise.resolve(test.get(name) ?? real.loadProcessor(name)),
    processorInfo: (name: string, stage?: string) =>
      Promise.resolve(test.get(name) ?? real.processorInfo(name, stage)),
  };
});

const aws = useTestAws();
const SITE = 'sakai';

type Deps = ReturnType<typeof testDeps>;

/** The job's zip: its record entries (name → content, each name counted) and its errors.csv rows. */
async function results(deps: Deps, resultKey: string) {
  const entries = await readZip(await deps.objects.bytes(resultKey));
  const names = entries.map((e) => e.name);
  const rows = entries.filter((e) => e.name.startsWith('rows/'));
  const errors = parse(entries.find((e) => e.name === 'errors.csv')!.data.toString('utf8'), {
    bom: true,
    columns: true,
  }) as { line: string; record: string; code: string; raw: string }[];
  const manifest = JSON.parse(entries.find((e) => e.name === 'manifest.json')!.data.toString('utf8')) as {
    counts: Record<string, number>;
    attempts?: unknown[];
  };
  const results = entries.find((e) => e.name === 'results.csv')?.data ?? Buffer.alloc(0);
  return { names, rows, errors, manifest, sheet: () => parseResultsCsv(results, 'utf-8-bom').rows };
}

/** A job of `records` records whose records never ran: cancelled while queued (every record CANCELLED). */
async function cancelledJob(deps: Deps, launcher: RecordingLauncher, processor: string, records: number) {
  const view = await startDirectJob(deps, SITE, Buffer.from(csvOf(records), 'utf8'), { processor });
  await cancelJob(deps, SITE, view.token);
  const job = await runAttempt(deps, launcher, SITE, view.token, launcher.launches.length);
  expect(job.state).toBe('CANCELLED');
  return job;
}

describe('Function: retryFailedRecords', () => {
  it('runs one attempt of the same job at a time: of two retries asked at once, one starts it and the other gets 409', async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const job = await cancelledJob(deps, launcher, 'json', 4);

    // Act
    const answers = await Promise.allSettled([
      retryFailedRecords(deps, SITE, job.token),
      retryFailedRecords(deps, SITE, job.token),
    ]);

    // Assess
    const started = answers.filter((a) => a.status === 'fulfilled').map((a) => a.value);
    const refused = answers.filter((a) => a.status === 'rejected').map((a) => a.reason as unknown);
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ token: job.token, retryable: 0 });
    expect(started[0]!.attempts.map((a) => [a.n, a.records])).toEqual([
      [1, 4],
      [2, 4],
    ]);
    expect(refused).toEqual([expect.objectContaining({ code: 'ATTEMPT_RUNNING', status: 409 })]);
    // Only the winner sent the attempt's chunks (a second send is harmless but wasted: see the reaper's below).
    const now = (await deps.jobs.get(SITE, job.token))!;
    const queueUrl = (await deps.queues.queueUrl(now.queueName!))!;
    const attrs = await sqsClient().send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    expect(Number(attrs.Attributes?.ApproximateNumberOfMessages)).toBe(now.totalChunks);
    expect((refused[0] as Error).message).toContain('attempt 2');
  });

  it('runs again only what is still retryable, with the original numbers and lines, and the counts add up', async () => {
    // Prepare: records 2, 5 and 7 of 10 fail in processing
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    probes.calls.clear();
    probes.failing = new Set([2, 5, 7]);
    const view = await startDirectJob(deps, SITE, Buffer.from(csvOf(10), 'utf8'), { processor: 'flaky' });
    const first = await runAttempt(deps, launcher, SITE, view.token, 0);
    expect(first).toMatchObject({ state: 'PARTIAL', succeeded: 7, failed: 3, retryable: 3 });

    // Act: a first retry (record 5 still fails), then a second one
    probes.failing = new Set([5]);
    probes.calls.clear();
    let from = launcher.launches.length;
    await retryFailedRecords(deps, SITE, view.token);
    const second = await runAttempt(deps, launcher, SITE, view.token, from);
    const ranSecond = [...probes.calls.keys()].sort((a, b) => a - b);
    const afterSecond = await results(deps, second.resultKey!);

    probes.failing = new Set();
    probes.calls.clear();
    from = launcher.launches.length;
    await retryFailedRecords(deps, SITE, view.token);
    const third = await runAttempt(deps, launcher, SITE, view.token, from);
    const ranThird = [...probes.calls.keys()];
    const final = await results(deps, third.resultKey!);
    const finalView = await getJobView(deps, SITE, view.token);

    // Assess: each attempt ran only what was retryable
    expect(ranSecond).toEqual([2, 5, 7]);
    expect(ranThird).toEqual([5]);
    // The second attempt's outputs: original numbers and lines (record n is on line n + 1)
    expect(second).toMatchObject({ state: 'PARTIAL', succeeded: 9, failed: 1, retryable: 1, attempt: 2 });
    expect(afterSecond.errors).toEqual([
      expect.objectContaining({ line: '6', record: '5', code: 'PROCESSING_FAILED', raw: '5,name 5' }),
    ]);
    expect(afterSecond.rows.map((r) => r.name).sort()).toEqual(
      [1, 2, 3, 4, 6, 7, 8, 9, 10].map((n) => `rows/${n}.json`).sort(),
    );
    const row7 = afterSecond.rows.find((r) => r.name === 'rows/7.json')!;
    expect(JSON.parse(row7.data.toString('utf8'))).toEqual({ n: 7, line: 8, fields: ['7', 'name 7'] });
    // The job at the end: every record once, counts that add up over the attempts
    expect(third).toMatchObject({ state: 'SUCCEEDED', succeeded: 10, failed: 0, retryable: 0, attempt: 3 });
    expect(final.errors).toEqual([]);
    // results.csv: the latest outcome of every record, in order, after each attempt
    expect(afterSecond.sheet().map((r) => [r.record, r.line, r.status, r.code])).toEqual(
      Array.from({ length: 10 }, (_, i) =>
        i === 4 ? [5, 6, 'failed', 'PROCESSING_FAILED'] : [i + 1, i + 2, 'succeeded', ''],
      ),
    );
    expect(final.sheet().map((r) => [r.record, r.status, r.fields])).toEqual(
      Array.from({ length: 10 }, (_, i) => [i + 1, 'succeeded', [String(i + 1), `name ${i + 1}`]]),
    );
    // Each record's outputs, from the attempt that ran it (attempt 1's through attempt 2's sheet)
    expect(final.sheet().map((r) => r.output)).toEqual(
      Array.from({ length: 10 }, (_, i) => `rows/${i + 1}.json`),
    );
    expect(final.names.filter((n) => n.startsWith('rows/')).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `rows/${i + 1}.json`).sort(),
    );
    expect(new Set(final.names).size).toBe(final.names.length);
    expect(final.manifest.counts).toEqual({ total: 10, succeeded: 10, failed: 0, rejected: 0 });
    expect(finalView.attempts.map((a) => [a.n, a.state, a.records, a.succeeded, a.failed])).toEqual([
      [1, 'PARTIAL', 10, 7, 3],
      [2, 'PARTIAL', 3, 2, 1],
      [3, 'SUCCEEDED', 1, 1, 0],
    ]);
    expect(finalView.retryable).toBe(0);
    await expect(errorsPage(deps, SITE, view.token, null)).resolves.toMatchObject({ total: 0 });
    await expect(retryFailedRecords(deps, SITE, view.token)).rejects.toMatchObject({
      code: 'NOTHING_TO_RETRY',
    });
  });

  it('never runs again a record whose side effect was claimed and done: its outputs are replayed', async () => {
    // Prepare: a job with side effects cancelled while queued; record 3's effect had gone out (its claim is DONE)
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    probes.calls.clear();
    probes.failing = new Set();
    const view = await startDirectJob(deps, SITE, Buffer.from(csvOf(6), 'utf8'), { processor: 'probe' });
    const claims = new EffectClaims(aws.table, 14);
    await claims.claim(SITE, view.token, 3, 'earlier-worker', 'test');
    await claims.done(SITE, view.token, 3, 'earlier-worker', [
      { name: 'rows/3.json', data: JSON.stringify({ n: 3, sent: 'before the stop' }) },
    ]);
    await cancelJob(deps, SITE, view.token);
    const cancelled = await runAttempt(deps, launcher, SITE, view.token, 0);
    expect(cancelled.state).toBe('CANCELLED');

    // Act
    const from = launcher.launches.length;
    await retryFailedRecords(deps, SITE, view.token);
    const done = await runAttempt(deps, launcher, SITE, view.token, from);
    const out = await results(deps, done.resultKey!);

    // Assess
    expect(probes.calls.has(3)).toBe(false);
    expect([...probes.calls.values()].every((c) => c === 1)).toBe(true);
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 6, failed: 0, totalRecords: 6 });
    const row3 = out.rows.filter((r) => r.name === 'rows/3.json');
    expect(row3.map((r) => JSON.parse(r.data.toString('utf8')) as unknown)).toEqual([
      { n: 3, sent: 'before the stop' },
    ]);
    expect(out.rows).toHaveLength(6);
    expect(out.errors).toEqual([]);
  });

  it('never lets a late chunk count or finalize request of the attempt before touch the running attempt', async () => {
    // Prepare: a cancelled job whose second attempt runs
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const job = await cancelledJob(deps, launcher, 'json', 4);
    await retryFailedRecords(deps, SITE, job.token);
    const running = await deps.jobs.get(SITE, job.token);

    // Act
    const lateCount = await deps.jobs.countChunk(SITE, job.token, 0, { succeeded: 4, failed: 0 }, false, 1);
    const lateFinalize = await finalizeJob(deps, SITE, job.token, 'late', 1);
    const after = await deps.jobs.get(SITE, job.token);

    // Assess
    expect(running).toMatchObject({ state: 'RUNNING', attempt: 2, chunksDone: 0 });
    expect(lateCount.counted).toBe(false);
    expect(lateFinalize.state).toBe('SKIPPED');
    expect(after).toMatchObject({ state: 'RUNNING', attempt: 2, chunksDone: 0, succeeded: 0 });
  });

  it("keeps the queue a retry is filling before it moves the job, and reaps a finished attempt's", async () => {
    // Prepare: a finished job; its first attempt's queue left behind, and its next attempt's being filled
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const job = await cancelledJob(deps, launcher, 'json', 3);
    const queue = (attempt: number) =>
      deps.queues.createJobQueue({
        name: reportQueueName(TEST_STAGE, job.token, attempt),
        site: SITE,
        token: job.token,
        dlqArn: aws.dlqArn,
        timings: deps.timings,
      });
    await queue(1);
    await queue(2);

    // Act
    await reap(deps, { graceSeconds: 60 });

    // Assess
    expect(await deps.queues.queueUrl(reportQueueName(TEST_STAGE, job.token, 2))).toBeDefined();
    expect(await deps.queues.queueUrl(reportQueueName(TEST_STAGE, job.token, 1))).toBeUndefined();
  });

  it('runs again a record with side effects whose claim says it certainly failed in processing, never one that succeeded', async () => {
    // Prepare: a job with side effects whose records 2 and 4 failed in processing (their claims settled FAILED)
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    probes.calls.clear();
    probes.failing = new Set([2, 4]);
    const view = await startDirectJob(deps, SITE, Buffer.from(csvOf(5), 'utf8'), { processor: 'probe' });
    const first = await runAttempt(deps, launcher, SITE, view.token, 0);
    expect(first).toMatchObject({ state: 'PARTIAL', succeeded: 3, failed: 2, retryable: 2 });

    // Act
    probes.failing = new Set();
    probes.calls.clear();
    const from = launcher.launches.length;
    await retryFailedRecords(deps, SITE, view.token);
    const done = await runAttempt(deps, launcher, SITE, view.token, from);
    const out = await results(deps, done.resultKey!);

    // Assess
    expect([...probes.calls.keys()].sort()).toEqual([2, 4]);
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 5, failed: 0, retryable: 0 });
    expect(out.rows.map((r) => r.name).sort()).toEqual([1, 2, 3, 4, 5].map((n) => `rows/${n}.json`));
    expect(out.errors).toEqual([]);
  });

  it('refuses a job with nothing to retry, a job whose attempt runs, and another site asking', async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const [clean] = await runJobs(deps, launcher, [{ site: 'kashima', office: 'main', csv: csvOf(3) }]);
    const running = await startDirectJob(deps, SITE, Buffer.from(csvOf(3), 'utf8'), { processor: 'json' });

    // Act / Assess
    await expect(retryFailedRecords(deps, 'kashima', clean!.token)).rejects.toMatchObject({
      code: 'NOTHING_TO_RETRY',
    });
    await expect(retryFailedRecords(deps, SITE, running.token)).rejects.toMatchObject({
      code: 'ATTEMPT_RUNNING',
      status: 409,
    });
    await expect(retryFailedRecords(deps, 'sakai', clean!.token)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

/** Messages waiting on the job's current attempt's queue. */
async function queued(deps: Deps, token: string): Promise<number> {
  const job = (await deps.jobs.get(SITE, token))!;
  const queueUrl = (await deps.queues.queueUrl(job.queueName!))!;
  const attrs = await sqsClient().send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(attrs.Attributes?.ApproximateNumberOfMessages);
}

/** The deps of an API call whose sends of chunk messages wait until the test lets them go (a slow sender). */
function slowSender(deps: Deps) {
  let go!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  const sending = new Promise<void>((r) => (reached = r));
  const slow = withAdapters(deps, {
    queues: {
      around: {
        sendBatch: async (call) => {
          reached();
          await gate;
          return call();
        },
      },
    },
  });
  return { deps: slow, sending, go };
}

/** The stage's grace for an attempt's sender, and a clock just past it. */
const SEND_GRACE = derivedTimings(TEST_TIMINGS).attemptSendGraceSeconds;
const pastGrace = () => new Date(Date.now() + (SEND_GRACE + 1) * 1000);

describe('Function: reap (an attempt whose sender died before sending it)', () => {
  it('sends again the chunks of an attempt whose caller died right after the write that started it, and every record runs once', async () => {
    // Prepare: a job with side effects whose records never ran (cancelled while queued); the retry's caller dies
    // (the upload function times out) at its first send of the attempt's chunks, after the write that started it
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    probes.failing = new Set();
    const job = await cancelledJob(deps, launcher, 'probe', 7);
    probes.calls.clear();
    const dying = withAdapters(deps, {
      queues: {
        before: (method) => {
          if (method === 'sendBatch') throw new KilledError('the upload function timed out');
        },
      },
    });
    await expect(retryFailedRecords(dying, SITE, job.token)).rejects.toBeInstanceOf(KilledError);
    const stuck = (await deps.jobs.get(SITE, job.token))!;
    const from = launcher.launches.length;

    // Act
    const report = await reap(deps, { now: pastGrace() });
    const done = await runAttempt(deps, launcher, SITE, job.token, from);
    const out = await results(deps, done.resultKey!);

    // Assess
    expect(stuck).toMatchObject({ state: 'QUEUED', attempt: 2, chunksDone: 0 });
    expect(stuck.chunksPendingSince).toBeDefined();
    expect(report.attemptsResent).toEqual([
      { site: SITE, token: job.token, attempt: 2, chunks: stuck.totalChunks },
    ]);
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 7, failed: 0, totalRecords: 7, attempt: 2 });
    expect(done.succeeded + done.failed + (done.rejected ?? 0)).toBe(done.totalRecords);
    expect(done.chunksPendingSince).toBeUndefined();
    expect(done.chunksSentAt).toBeDefined();
    expect([...probes.calls.entries()].sort((a, b) => a[0] - b[0])).toEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => [n, 1]),
    );
    expect(out.rows.map((r) => r.name).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `rows/${n}.json`));
    expect(out.errors).toEqual([]);
    expect(out.manifest.counts).toMatchObject({ succeeded: 7, failed: 0 });
  });

  it('never lets a late sender of the attempt before mark a later attempt sent: that one is still sent again', async () => {
    // Prepare: a retry whose caller died before sending its attempt (2)
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const job = await cancelledJob(deps, launcher, 'json', 3);
    const dying = withAdapters(deps, {
      queues: {
        before: (method) => {
          if (method === 'sendBatch') throw new KilledError('the upload function timed out');
        },
      },
    });
    await expect(retryFailedRecords(dying, SITE, job.token)).rejects.toBeInstanceOf(KilledError);
    const from = launcher.launches.length;

    // Act: a sender of attempt 1 marks late, then the reaper passes
    const late = await deps.jobs.markChunksSent(SITE, job.token, 1, new Date().toISOString());
    const marked = (await deps.jobs.get(SITE, job.token))!;
    const report = await reap(deps, { now: pastGrace() });
    const done = await runAttempt(deps, launcher, SITE, job.token, from);

    // Assess
    expect(late).toBe(false);
    expect(marked.chunksPendingSince).toBeDefined();
    expect(marked.chunksSentAt).toBeUndefined();
    expect(report.attemptsResent.map((r) => [r.token, r.attempt])).toEqual([[job.token, 2]]);
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 3, failed: 0, totalRecords: 3, attempt: 2 });
  });

  it('leaves alone an attempt whose sender is merely slow (not past the grace): its chunks are sent once', async () => {
    // Prepare: a retry whose sends are slow
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const job = await cancelledJob(deps, launcher, 'json', 5);
    const slow = slowSender(deps);
    const from = launcher.launches.length;
    const retry = retryFailedRecords(slow.deps, SITE, job.token);
    await slow.sending;

    // Act: the reaper passes while the sender is still sending, then the sender finishes
    const report = await reap(deps, { now: new Date(Date.now() + (SEND_GRACE - 5) * 1000) });
    slow.go();
    await retry;
    const sent = await queued(deps, job.token);
    const done = await runAttempt(deps, launcher, SITE, job.token, from);

    // Assess
    expect(report.attemptsResent).toEqual([]);
    expect(sent).toBe(done.totalChunks);
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 5, failed: 0, totalRecords: 5, attempt: 2 });
  });

  it('ends with the counts agreeing when the reaper sends again an attempt its slow sender then sends too', async () => {
    // Prepare: a retry of a job with side effects whose sender is held past the grace
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    probes.failing = new Set();
    const job = await cancelledJob(deps, launcher, 'probe', 6);
    probes.calls.clear();
    const slow = slowSender(deps);
    const from = launcher.launches.length;
    const retry = retryFailedRecords(slow.deps, SITE, job.token);
    await slow.sending;

    // Act: the reaper sends the attempt again, then the slow sender sends it too
    const report = await reap(deps, { now: pastGrace() });
    slow.go();
    await retry;
    const sent = await queued(deps, job.token);
    const done = await runAttempt(deps, launcher, SITE, job.token, from);
    const out = await results(deps, done.resultKey!);

    // Assess: every chunk twice on the queue, every record once in the outcome
    expect(report.attemptsResent).toEqual([
      { site: SITE, token: job.token, attempt: 2, chunks: done.totalChunks },
    ]);
    expect(sent).toBe(2 * done.totalChunks!);
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 6, failed: 0, totalRecords: 6, attempt: 2 });
    expect([...probes.calls.values()].every((c) => c === 1)).toBe(true);
    expect(out.rows.map((r) => r.name).sort()).toEqual([1, 2, 3, 4, 5, 6].map((n) => `rows/${n}.json`));
    expect(out.errors).toEqual([]);
  });
});
