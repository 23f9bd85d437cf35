/**
 * Stopping a job early (cancel, failure rate) through core, on the embedded emulators: the API operations (cancel,
 * errors page, usage), the worker leaving a stopped job, the finalize of a stopped job (only counted chunks in the
 * zip, every other record in errors.csv, counts that add up), the reaper, and retry of what a stop left.
 */
import { parse } from 'csv-parse/sync';
import { describe, expect, it, vi } from 'vitest';
import type { PipelineDeps } from '../../../../core/deps.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { startDirectJob, startPresignedJob } from '../../../../core/intake/operations.ts';
import { cancelJob } from '../../../../core/intake/cancel.ts';
import { errorsPage } from '../../../../core/intake/error-rows.ts';
import { retryFailedRecords } from '../../../../core/intake/rerun-failed.ts';
import { usageView } from '../../../../core/intake/usage-view.ts';
import { keys, reportQueueName } from '../../../../core/jobs/keys.ts';
import { JobStore } from '../../../../core/jobs/store.ts';
import { fetchEmulatorPage } from '../../../../local/emulator-gate.ts';
import { grantWorkers } from '../../../../core/budget/grant-workers.ts';
import { jobKey } from '../../../../core/budget/policy.ts';
import { reap } from '../../../../core/reaper/reaper.ts';
import { stopOnFailureRate } from '../../../../core/stop/stop.ts';
import { UsageStore } from '../../../../core/usage/store.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { EffectClaims, KEPT_OUTPUT_BYTES } from '../../../../core/effects/claims.ts';
import { RECORD_HEADER } from '../../../../core/processors/mail.ts';
import { splitUploaded } from '../../../../core/intake/operations.ts';
import { RecordingLauncher, TEST_STAGE, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { csvOf, drainFinalizeRequests } from '../../../helpers/pipeline-jobs.ts';
import { readZip } from '../../../helpers/zip.ts';
import { parseResultsCsv } from '../../../helpers/results-csv.ts';

const aws = useTestAws();

/** The tokens of the finalize requests on the queue (taken off it). */
async function finalizeRequests(deps: PipelineDeps): Promise<string[]> {
  return (await drainFinalizeRequests(deps)).map((r) => r.token);
}

async function zipOf(deps: ReturnType<typeof testDeps>, site: string, token: string) {
  const entries = await readZip(await deps.objects.bytes(keys.result(site, token)));
  const text = (name: string) => entries.find((e) => e.name === name)!.data.toString('utf8');
  return {
    manifest: JSON.parse(text('manifest.json')) as {
      state: string;
      counts: { total: number; succeeded: number; failed: number; rejected: number };
      stop?: { reason: string };
    },
    errors: parse(text('errors.csv').replace(/^\uFEFF/, ''), { columns: true }) as {
      line: string;
      record: string;
      code: string;
      raw: string;
    }[],
    rows: entries.filter((e) => e.name.startsWith('rows/')).map((e) => Number(/(\d+)/.exec(e.name)![1])),
    results: entries.find((e) => e.name === 'results.csv')?.data ?? Buffer.alloc(0),
  };
}

describe('Function: cancelJob', () => {
  it('cancels a running job: its finalize zips nothing processed and lists every record, the counts add up', async () => {
    // Prepare: 30 records, record 5 rejected by the split; no worker has run yet
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(30, [5])), { processor: 'json' });
    await finalizeRequests(deps);

    // Act
    const cancel = await cancelJob(deps, 'sakai', started.token);
    const asked = await finalizeRequests(deps);
    const worker = await runWorker(deps, { site: 'sakai', token: started.token, waitSeconds: 0 });
    const askedByWorker = await finalizeRequests(deps);
    const done = await finalizeJob(deps, 'sakai', started.token);
    const job = await deps.jobs.get('sakai', started.token);
    const zip = await zipOf(deps, 'sakai', started.token);
    const again = await cancelJob(deps, 'sakai', started.token);

    // Assess: the cancel answers at once, its finalize ends it
    expect(started.state).toBe('RUNNING');
    expect(cancel).toMatchObject({ status: 202, view: { state: 'RUNNING' } });
    expect(asked).toEqual([started.token]);
    expect(worker).toMatchObject({ chunks: 0, reason: 'job-finished' });
    expect(askedByWorker).toEqual([started.token]);
    expect(done.state).toBe('CANCELLED');
    expect(job).toMatchObject({ state: 'CANCELLED', failed: 29, rejected: 1, succeeded: 0, errorRows: 30 });
    expect(job!.error?.code).toBe('CANCELLED');
    expect(launcher.stops.map((s) => s.token)).toContain(started.token);
    expect(await deps.queues.queueUrl(reportQueueName(TEST_STAGE, started.token))).toBeUndefined();
    expect(again).toMatchObject({ status: 200, view: { state: 'CANCELLED', rows: zip.manifest.counts } });
    // The zip: cancelled, nothing processed, every record in errors.csv once with its line and text
    expect(zip.manifest).toMatchObject({
      state: 'CANCELLED',
      stop: { reason: 'CANCELLED' },
      counts: { total: 30, succeeded: 0, failed: 29, rejected: 1 },
    });
    expect(zip.rows).toEqual([]);
    expect(zip.errors.map((e) => Number(e.record))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(zip.errors.find((e) => e.record === '5')!.code).toBe('COLUMN_COUNT');
    const cancelled = zip.errors.filter((e) => e.code === 'CANCELLED');
    expect(cancelled).toHaveLength(29);
    expect(cancelled.every((e) => Number(e.line) === Number(e.record) + 1)).toBe(true);
    expect(cancelled[0]).toMatchObject({ record: '1', raw: '1,name 1' });
    // results.csv: every record in order, cancelled but the one the split rejected
    const sheet = parseResultsCsv(zip.results, 'utf-8-bom');
    expect(sheet.rows.map((r) => [r.record, r.line, r.status])).toEqual(
      Array.from({ length: 30 }, (_, i) => [i + 1, i + 2, i === 4 ? 'rejected' : 'cancelled']),
    );
    expect(sheet.rows[0]!.fields).toEqual(['1', 'name 1']);
    expect(sheet.rows[0]!.code).toBe('CANCELLED');
  });

  it('puts the records done before the cancel in the zip exactly once, and the rest in errors.csv', async () => {
    // Prepare: 400 records in several chunks; a worker that stops taking chunks after its first count
    const launcher = new RecordingLauncher();
    const stopWorker = new AbortController();
    const base = testDeps(aws, { launcher, limits: { chunkMaxRecords: 50 } });
    const jobs = new (class extends JobStore {
      override async countChunk(...args: Parameters<JobStore['countChunk']>) {
        const r = await super.countChunk(...args);
        stopWorker.abort();
        return r;
      }
    })(aws.table);
    const deps = { ...base, jobs };
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(400)), {
      processor: 'json',
      workers: 1,
    });

    // Act
    await runWorker(deps, { site: 'sakai', token: started.token, waitSeconds: 0, signal: stopWorker.signal });
    const before = await deps.jobs.get('sakai', started.token);
    await cancelJob(deps, 'sakai', started.token);
    await finalizeJob(deps, 'sakai', started.token);
    const zip = await zipOf(deps, 'sakai', started.token);
    const retry = await retryFailedRecords(deps, 'sakai', started.token);

    // Assess
    const c = zip.manifest.counts;
    expect(before!.chunksDone).toBeGreaterThan(0);
    expect(before!.chunksDone).toBeLessThan(before!.totalChunks!);
    expect(c).toEqual({
      total: 400,
      succeeded: before!.succeeded,
      failed: 400 - before!.succeeded,
      rejected: 0,
    });
    expect(new Set(zip.rows).size).toBe(zip.rows.length);
    expect(zip.rows.length).toBe(c.succeeded);
    const seen = [...zip.rows, ...zip.errors.map((e) => Number(e.record))].sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(zip.errors.every((e) => e.code === 'CANCELLED')).toBe(true);
    // A retry is the job's second attempt, of exactly the records never processed
    expect(retry).toMatchObject({ token: started.token, progress: { total: 400 } });
    expect(retry.attempts.map((a) => [a.n, a.records])).toEqual([
      [1, 400],
      [2, c.failed],
    ]);
  });

  it('zips each counted chunk once when the counted chunks have a gap (a part written but never counted)', async () => {
    // Prepare: 400 records in 8 chunks; chunk 1's part is written but its count never lands (its worker died
    // between the two), so the stopped finalize's counted chunks are 0, 2, 3, … 7: positions and numbers differ.
    const base = testDeps(aws, { launcher: new RecordingLauncher(), limits: { chunkMaxRecords: 50 } });
    const jobs = new (class extends JobStore {
      override async countChunk(...args: Parameters<JobStore['countChunk']>) {
        return args[2] === 1 ? { counted: false, complete: false } : super.countChunk(...args);
      }
    })(aws.table);
    const deps = { ...base, jobs } as typeof base;
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(400)), {
      processor: 'json',
      workers: 1,
    });
    const stop = new AbortController();
    const worker = runWorker(deps, {
      site: 'sakai',
      token: started.token,
      waitSeconds: 0,
      signal: stop.signal,
    });
    await vi.waitFor(async () => expect((await deps.jobs.get('sakai', started.token))!.chunksDone).toBe(7), {
      timeout: 20_000,
      interval: 100,
    });
    stop.abort();
    await worker;

    // Act
    await cancelJob(deps, 'sakai', started.token);
    await finalizeJob(deps, 'sakai', started.token);
    const zip = await zipOf(deps, 'sakai', started.token);

    // Assess: every record once, chunk 1's (51..100) as never processed
    expect(zip.manifest.counts).toEqual({ total: 400, succeeded: 350, failed: 50, rejected: 0 });
    expect(zip.rows.length).toBe(350);
    expect(new Set(zip.rows).size).toBe(350);
    expect(zip.errors.map((e) => Number(e.record))).toEqual(Array.from({ length: 50 }, (_, i) => 51 + i));
    expect(zip.rows.some((n) => n > 50 && n <= 100)).toBe(false);
  });

  it('cancels a QUEUED job: its demand leaves the budget at once, no worker ever starts, its finalize ends it', async () => {
    // Prepare: a budget of one worker, held by a first job; the second waits QUEUED (record 5 rejected by its split)
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher, budget: { maxWorkers: 1 } });
    const holder = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(10)), { processor: 'json' });
    const queued = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(30, [5])), { processor: 'json' });
    await finalizeRequests(deps);
    const before = await deps.grants.read();

    // Act: cancel it; then the first job ends (its place goes back) and a granter pass runs
    const cancel = await cancelJob(deps, 'sakai', queued.token);
    const after = await deps.grants.read();
    const asked = await finalizeRequests(deps);
    await runWorker(deps, { site: 'sakai', token: holder.token, waitSeconds: 0, idlePolls: 2 });
    await finalizeJob(deps, 'sakai', holder.token);
    const pass = await grantWorkers(deps, 'reaper');
    const done = await finalizeJob(deps, 'sakai', queued.token);
    const job = await deps.jobs.get('sakai', queued.token);
    const zip = await zipOf(deps, 'sakai', queued.token);
    const again = await cancelJob(deps, 'sakai', queued.token);
    const budget = await deps.grants.read();

    // Assess: it was queued and wanted workers; the cancel took its demand out of the budget
    expect([holder.state, queued.state]).toEqual(['RUNNING', 'QUEUED']);
    expect(before.demand.map((d) => d.token)).toContain(queued.token);
    expect(cancel).toMatchObject({ status: 202, view: { state: 'QUEUED' } });
    expect(after.demand.map((d) => d.token)).not.toContain(queued.token);
    expect(asked).toEqual([queued.token]);
    // No worker ever started for it, even once the budget had a place free
    expect(pass.granted.map((g) => g.token)).not.toContain(queued.token);
    expect(launcher.launches.map((l) => l.token)).not.toContain(queued.token);
    expect(budget.state.holders[jobKey('sakai', queued.token)]).toBeUndefined();
    expect(budget.demand).toEqual([]);
    // Its finalize ended it CANCELLED: every record in errors.csv, the counts add up, its queue gone
    expect(done.state).toBe('CANCELLED');
    expect(job).toMatchObject({ state: 'CANCELLED', succeeded: 0, failed: 29, rejected: 1, errorRows: 30 });
    expect(await deps.queues.queueUrl(reportQueueName(TEST_STAGE, queued.token))).toBeUndefined();
    expect(zip.manifest).toMatchObject({
      state: 'CANCELLED',
      counts: { total: 30, succeeded: 0, failed: 29, rejected: 1 },
    });
    expect(zip.rows).toEqual([]);
    expect(zip.errors.filter((e) => e.code === 'CANCELLED')).toHaveLength(29);
    expect(again).toMatchObject({ status: 200, view: { state: 'CANCELLED' } });
  });

  it('starts no worker for a QUEUED job whose stop a granter pass finds only when it launches', async () => {
    // Prepare: a queued job stopped behind the budget's back (its demand still there), then a place frees up
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher, budget: { maxWorkers: 1 } });
    const holder = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(10)), { processor: 'json' });
    const queued = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(10)), { processor: 'json' });
    await deps.jobs.recordStop('sakai', queued.token, {
      reason: 'CANCELLED',
      at: new Date().toISOString(),
      message: 'test',
    });
    await deps.grants.finish('sakai', holder.token);

    // Act
    const pass = await grantWorkers(deps, 'reaper');
    const job = await deps.jobs.get('sakai', queued.token);
    const budget = await deps.grants.read();

    // Assess: granted by the plan, refused at launch: still QUEUED, its demand and place dropped
    expect(queued.state).toBe('QUEUED');
    expect(pass.notLaunched.map((n) => n.token)).toContain(queued.token);
    expect(launcher.launches.map((l) => l.token)).not.toContain(queued.token);
    expect(job!.state).toBe('QUEUED');
    expect(budget.demand.map((d) => d.token)).not.toContain(queued.token);
    expect(budget.state.holders[jobKey('sakai', queued.token)]).toBeUndefined();
  });

  it('ends a presigned job still waiting for its file at once; its file arriving later is not split', async () => {
    // Prepare
    const deps = testDeps(aws);
    const created = await startPresignedJob(deps, 'sakai', { fileName: 'late.csv', processor: 'json' });

    // Act
    const cancel = await cancelJob(deps, 'sakai', created.token);
    await deps.objects.put(keys.source('sakai', created.token), csvOf(3));
    const split = await splitUploaded(deps, keys.source('sakai', created.token));
    const page = await errorsPage(deps, 'sakai', created.token, null);
    const again = await cancelJob(deps, 'sakai', created.token);

    // Assess
    expect(cancel).toMatchObject({
      status: 200,
      view: { state: 'CANCELLED', rows: { total: 0 }, error: { code: 'CANCELLED' } },
    });
    expect(cancel.view.finishedAt).toBeDefined();
    expect(split.state).toBe('SKIPPED');
    expect(page).toMatchObject({ total: 0, errors: [] });
    expect(again.status).toBe(200);
  });

  it('answers 409 for a finished or finalizing job and 404 for another site or no job', async () => {
    // Prepare
    const deps = testDeps(aws);
    const finished = await startDirectJob(deps, 'kawasaki', Buffer.from('a,a\n1,2\n'), { processor: 'json' });
    const finalizing = await startDirectJob(deps, 'kawasaki', Buffer.from(csvOf(3)), { processor: 'json' });
    await deps.jobs.beginFinalize('kawasaki', finalizing.token, new Date(), 600, 'test');

    // Act, Assess
    expect(finished.state).toBe('REJECTED');
    await expect(cancelJob(deps, 'kawasaki', finished.token)).rejects.toMatchObject({
      code: 'JOB_FINISHED',
      status: 409,
    });
    await expect(cancelJob(deps, 'kawasaki', finalizing.token)).rejects.toMatchObject({
      code: 'JOB_FINISHED',
      status: 409,
    });
    await expect(cancelJob(deps, 'sakai', finalizing.token)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(cancelJob(deps, 'sakai', 'not-a-token')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

/** The record numbers a stopped job's finalize offers a retry (its failed.jsonl), or [] when it wrote none. */
async function retryable(deps: ReturnType<typeof testDeps>, site: string, token: string): Promise<number[]> {
  if ((await deps.objects.size(keys.failed(site, token))) === undefined) return [];
  const text = (await deps.objects.bytes(keys.failed(site, token))).toString('utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { n: number }).n)
    .sort((a, b) => a - b);
}

describe("Function: finalizeJob (a stopped job's effect claims)", () => {
  it('reports each uncounted record by its claim: DONE in the zip, FAILED its code, CLAIMED IN_DOUBT; only the untouched CANCELLED', async () => {
    // Prepare: 12 records (8 rejected by the split), none counted; records 1-5 claimed by a worker the cancel
    // caught mid-chunk: 1 done, 2 done with outputs too large to keep, 3 refused, 4 claimed (no outcome), 5
    // released; records 6-12 never claimed. A DONE claim of record 6 under another job (same site, a token
    // that extends this one) and of another site must change nothing.
    const deps = testDeps(aws);
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(12, [8])), { processor: 'json' });
    const claims = new EffectClaims(aws.table, 14);
    const t = started.token;
    for (const n of [1, 2, 3, 4, 5]) await claims.claim('sakai', t, n, `c${n}`, 'host/7');
    await claims.done('sakai', t, 1, 'c1', [{ name: 'sent/1.json', data: '{"id":"m-1"}' }]);
    await claims.done('sakai', t, 2, 'c2', [{ name: 'sent/2.json', data: 'x'.repeat(KEPT_OUTPUT_BYTES) }]);
    await claims.failed('sakai', t, 3, 'c3', 'MAIL_INVALID_ADDRESS', 'not an address; not sent');
    await claims.release('sakai', t, 5, 'c5');
    for (const [site, token] of [
      ['sakai', `${t}1`],
      ['kawasaki', t],
    ] as const) {
      await claims.claim(site, token, 6, 'other', 'host/8');
      await claims.done(site, token, 6, 'other', [{ name: 'sent/6.json', data: 'not this job' }]);
    }

    // Act
    await cancelJob(deps, 'sakai', t);
    const done = await finalizeJob(deps, 'sakai', t);
    const job = await deps.jobs.get('sakai', t);
    const entries = await readZip(await deps.objects.bytes(keys.result('sakai', t)));
    const zip = await zipOf(deps, 'sakai', t);

    // Assess: each record in exactly one outcome, the counts add up everywhere
    expect(done).toMatchObject({
      state: 'CANCELLED',
      counts: { total: 12, succeeded: 1, failed: 10, rejected: 1 },
    });
    expect(job).toMatchObject({ state: 'CANCELLED', succeeded: 1, failed: 10, rejected: 1, errorRows: 11 });
    expect(zip.manifest.counts).toEqual({ total: 12, succeeded: 1, failed: 10, rejected: 1 });
    expect(entries.filter((e) => e.name.startsWith('sent/')).map((e) => [e.name, e.data.toString()])).toEqual(
      [['sent/1.json', '{"id":"m-1"}']],
    );
    expect(zip.errors.map((e) => [Number(e.record), e.code])).toEqual([
      [2, 'DONE_RESULT_NOT_KEPT'],
      [3, 'MAIL_INVALID_ADDRESS'],
      [4, 'IN_DOUBT'],
      [5, 'CANCELLED'],
      [6, 'CANCELLED'],
      [7, 'CANCELLED'],
      [8, 'COLUMN_COUNT'],
      [9, 'CANCELLED'],
      [10, 'CANCELLED'],
      [11, 'CANCELLED'],
      [12, 'CANCELLED'],
    ]);
    // The claim-reported ones keep their line and text too
    expect(zip.errors.slice(0, 3).map((e) => [e.line, e.raw])).toEqual([
      ['3', '2,name 2'],
      ['4', '3,name 3'],
      ['5', '4,name 4'],
    ]);
    expect(job!.error!.message).toMatch(/4 more had their effect claimed .*1 done.* 7 never were/);
    // A retry is offered only the records never touched
    expect(await retryable(deps, 'sakai', t)).toEqual([5, 6, 7, 9, 10, 11, 12]);
  });

  it('stopped early: DONE claims on many uncounted records (claims over one 1 MB query page) are successes in the zip', async () => {
    // Prepare: 30 records stopped by their failure rate before any chunk was counted; records 1-20 were done,
    // each with a 60 KB result (1.2 MB of claims: more than one page of the Query)
    const deps = testDeps(aws);
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(30)), {
      processor: 'json',
      maxFailureRate: 0.1,
    });
    const t = started.token;
    const claims = new EffectClaims(aws.table, 14);
    const big = (n: number) => `${n}:`.padEnd(60 * 1024, 'y');
    for (let n = 1; n <= 20; n++) {
      await claims.claim('sakai', t, n, `c${n}`, 'host/7');
      await claims.done('sakai', t, n, `c${n}`, [{ name: `out/${n}.txt`, data: big(n) }]);
    }
    await stopOnFailureRate(deps, (await deps.jobs.get('sakai', t))!, { succeeded: 0, failed: 100 });

    // Act
    const done = await finalizeJob(deps, 'sakai', t);
    const entries = await readZip(await deps.objects.bytes(keys.result('sakai', t)));
    const zip = await zipOf(deps, 'sakai', t);
    const reader = new EffectClaims(aws.table, 14);
    await reader.ofJob('sakai', t, () => true);

    // Assess
    expect(reader.stats.reads).toBeGreaterThan(1);
    expect(done).toMatchObject({
      state: 'FAILED',
      counts: { total: 30, succeeded: 20, failed: 10, rejected: 0 },
    });
    const outs = entries.filter((e) => e.name.startsWith('out/'));
    expect(outs.map((e) => e.name)).toEqual(Array.from({ length: 20 }, (_, i) => `out/${i + 1}.txt`));
    expect(outs.every((e, i) => e.data.toString() === big(i + 1))).toBe(true);
    expect(zip.errors.map((e) => [Number(e.record), e.code])).toEqual(
      Array.from({ length: 10 }, (_, i) => [i + 21, 'STOPPED_EARLY']),
    );
    expect(await retryable(deps, 'sakai', t)).toEqual(Array.from({ length: 10 }, (_, i) => i + 21));
  });

  it('a mail job cancelled with its chunk in flight: every mail sent is a success in the zip, never CANCELLED or retried', async () => {
    // Prepare: one chunk of 40 mails, 300 ms each, 8 in flight; the worker is stopped mid-chunk (its chunk
    // never counted), then the job is cancelled
    const deps = testDeps(aws);
    const slow = { ...deps, timings: { ...deps.timings, chunkTargetSeconds: 60 } };
    const csv = [
      'id,氏名,品目,数量,受注日,email',
      ...Array.from({ length: 40 }, (_, i) => `${i + 1},客${i + 1},鋼板,1,2026-11-20,s${i + 1}@example.com`),
    ];
    const view = await startDirectJob(slow, 'marifu', Buffer.from(csv.join('\n')), {
      processor: 'mail',
      workers: 1,
      concurrency: 8,
      simulateDelayMs: 300,
    });
    // The worker is stopped as soon as a first mail is recorded done (whatever the machine's load)
    const stop = new AbortController();
    const watcher = new EffectClaims(aws.table, 14);
    const watch = vi.waitFor(
      async () => {
        if (stop.signal.aborted) return;
        const found = await watcher.ofJob('marifu', view.token, () => true);
        if (![...found.values()].some((c) => c.status === 'DONE'))
          throw new Error('no mail recorded done yet');
        stop.abort(new Error('stop now'));
      },
      { timeout: 60_000, interval: 50 },
    );
    const worker = await runWorker(slow, {
      site: 'marifu',
      token: view.token,
      waitSeconds: 0,
      visibilitySeconds: 30,
      abortRecords: stop.signal,
    });
    stop.abort();
    await watch;

    // Act
    await cancelJob(slow, 'marifu', view.token);
    const done = await finalizeJob(slow, 'marifu', view.token);
    const entries = await readZip(await slow.objects.bytes(keys.result('marifu', view.token)));
    const zip = await zipOf(slow, 'marifu', view.token);
    const store = (await (await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`)).json()) as {
      emails: { headers?: { name: string; value: string }[] }[];
    };

    // Assess: every mail sent is a success in the zip, or IN_DOUBT (aborted while SES had it: it may have gone);
    // only records never mailed are CANCELLED, and a retry is offered those alone
    const mailed = store.emails
      .map((m) => m.headers?.find((h) => h.name === RECORD_HEADER)?.value ?? '')
      .filter((k) => k.includes(view.token))
      .map((k) => Number(k.split('#')[2]))
      .sort((a, b) => a - b);
    const inZip = entries
      .filter((e) => e.name.startsWith('mail/'))
      .map((e) => Number(/\d+/.exec(e.name)![0]))
      .sort((a, b) => a - b);
    const byCode = (code: string) => zip.errors.filter((e) => e.code === code).map((e) => Number(e.record));
    expect(worker).toMatchObject({ chunks: 0, reason: 'stopped' });
    expect(inZip.length).toBeGreaterThan(0);
    expect(mailed.length).toBeLessThan(40);
    expect(inZip.every((n) => mailed.includes(n))).toBe(true);
    expect(mailed.filter((n) => !inZip.includes(n)).every((n) => byCode('IN_DOUBT').includes(n))).toBe(true);
    expect(byCode('CANCELLED').filter((n) => mailed.includes(n))).toEqual([]);
    expect(byCode('CANCELLED').length + byCode('IN_DOUBT').length).toBe(zip.errors.length);
    expect(done).toMatchObject({
      state: 'CANCELLED',
      counts: { total: 40, succeeded: inZip.length, failed: 40 - inZip.length, rejected: 0 },
    });
    expect(await retryable(slow, 'marifu', view.token)).toEqual(byCode('CANCELLED'));
  }, 60_000);
});

describe('Function: stopOnFailureRate', () => {
  it('stops a job over its rate once (a cancel then answers 409), asks for its finalize, and ends it FAILED', async () => {
    // Prepare
    const deps = testDeps(aws);
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(200)), {
      processor: 'json',
      maxFailureRate: 0.1,
    });
    await finalizeRequests(deps);
    const job = (await deps.jobs.get('sakai', started.token))!;

    // Act
    const under = await stopOnFailureRate(deps, job, { succeeded: 91, failed: 9 });
    const over = await stopOnFailureRate(deps, job, { succeeded: 89, failed: 11 });
    const twice = await stopOnFailureRate(deps, job, { succeeded: 80, failed: 20 });
    const asked = await finalizeRequests(deps);
    const cancel = await cancelJob(deps, 'sakai', started.token).catch((e: unknown) => e);
    const done = await finalizeJob(deps, 'sakai', started.token);
    const ended = await deps.jobs.get('sakai', started.token);

    // Assess
    expect(job.options).toMatchObject({ maxFailureRate: '0.1' });
    expect([under, over, twice]).toEqual([false, true, false]);
    expect(asked).toEqual([started.token]);
    expect(cancel).toMatchObject({ code: 'JOB_FINISHED', status: 409 });
    expect(done.state).toBe('FAILED');
    expect(ended).toMatchObject({ state: 'FAILED', failed: 200, stop: { reason: 'FAILURE_RATE_EXCEEDED' } });
    expect(ended!.error).toMatchObject({ code: 'FAILURE_RATE_EXCEEDED' });
    expect(ended!.error!.message).toMatch(/11 of the 100 records processed so far failed \(11\.0 %\)/);
    const zip = await zipOf(deps, 'sakai', started.token);
    expect(zip.errors.every((e) => e.code === 'STOPPED_EARLY')).toBe(true);
  });
});

describe('Function: reap', () => {
  it('asks again for the finalize of a running job that was stopped, and launches no worker for it', async () => {
    // Prepare: a stopped job whose finalize request was lost, with no live worker for long
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const started = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(5)), { processor: 'json' });
    await cancelJob(deps, 'sakai', started.token);
    await finalizeRequests(deps);
    launcher.launches.length = 0;

    // Act
    const report = await reap(deps, { graceSeconds: 0, now: new Date(Date.now() + 3600_000) });

    // Assess
    expect(report.finalizeRequested).toContainEqual({ site: 'sakai', token: started.token });
    expect(report.relaunched.map((r) => r.token)).not.toContain(started.token);
    expect(launcher.launches.map((l) => l.token)).not.toContain(started.token);
    expect(await finalizeRequests(deps)).toContain(started.token);
  });
});

describe('Function: errorsPage', () => {
  it("pages through a finished job's errors.csv rows as they are, and refuses bad pages and running jobs", async () => {
    // Prepare: 25 rejected records among 30 (a formula-like value shows raw, not neutralised)
    const deps = testDeps(aws);
    const rows = Array.from({ length: 30 }, (_, i) => (i < 25 ? `=${i + 1}` : `${i + 1},ok`));
    const started = await startDirectJob(deps, 'sakai', Buffer.from(`id,name\n${rows.join('\n')}\n`), {
      processor: 'json',
    });
    const running = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(3)), { processor: 'json' });
    await runWorker(deps, { site: 'sakai', token: started.token, waitSeconds: 0, idlePolls: 2 });
    await finalizeJob(deps, 'sakai', started.token);

    // Act
    const first = await errorsPage(deps, 'sakai', started.token, { limit: '20' });
    const second = await errorsPage(deps, 'sakai', started.token, { limit: '20', offset: '20' });
    const past = await errorsPage(deps, 'sakai', started.token, { offset: '25' });

    // Assess
    expect(first).toMatchObject({ token: started.token, total: 25, offset: 0, limit: 20 });
    expect(first.errors).toHaveLength(20);
    expect(first.errors[0]).toEqual({
      line: 2,
      record: 1,
      code: 'COLUMN_COUNT',
      message: expect.any(String),
      raw: '=1',
    });
    expect(second.errors.map((e) => e.line)).toEqual([22, 23, 24, 25, 26]);
    expect(past.errors).toEqual([]);
    for (const q of [{ limit: '0' }, { limit: '101' }, { offset: '-1' }, { page: '1' }]) {
      await expect(errorsPage(deps, 'sakai', started.token, q)).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
        status: 400,
      });
    }
    await expect(errorsPage(deps, 'sakai', running.token, null)).rejects.toMatchObject({
      code: 'JOB_NOT_FINISHED',
      status: 409,
    });
    await expect(errorsPage(deps, 'kawasaki', started.token, null)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('Function: usageView', () => {
  it("answers the site's figures per day and office, its totals and the next mail, nothing of another site", async () => {
    // Prepare: sakai's two offices over two days, kawasaki's figures on the same days
    const deps = testDeps(aws);
    const usage = new UsageStore(aws.table);
    const f = (jobs: number, rows: number, failedRows = 0, rejectedJobs = 0) => ({
      jobs,
      rows,
      failedRows,
      rejectedJobs,
    });
    await usage.add('sakai', '2026-11-20', 'main', 't1', f(2, 10));
    await usage.add('sakai', '2026-11-20', 'port', 't2', f(1, 2, 1));
    await usage.add('sakai', '2026-11-21', 'main', 't3', f(1, 0, 0, 1));
    await usage.add('kawasaki', '2026-11-20', 'main', 't4', f(9, 999));
    // 06:00 in Tokyo on 2026-11-21: the next mail goes at 07:00 and reports the 20th
    const now = new Date('2026-11-20T21:00:00Z');

    // Act
    const v = await usageView(deps, 'sakai', { from: '2026-11-19', to: '2026-11-21' }, now);

    // Assess
    expect(v.site).toEqual({ id: 'sakai', name: '堺', timeZone: 'Asia/Tokyo' });
    expect(v.days.map((d) => [d.day, d.total.jobs])).toEqual([
      ['2026-11-19', 0],
      ['2026-11-20', 3],
      ['2026-11-21', 1],
    ]);
    expect(v.days[1]!.offices.map((o) => [o.id, o.figures])).toEqual([
      ['main', f(2, 10)],
      ['port', f(1, 2, 1)],
    ]);
    expect(v.total.total).toEqual(f(4, 12, 1, 1));
    expect(v.nextMail).toMatchObject({
      day: '2026-11-20',
      sendAt: '2026-11-21T07:00:00+09:00',
      subject: '【Rowfleet】堺 ご利用状況のお知らせ (2026-11-20)',
    });
    expect(v.nextMail.text).toContain('堺本社');
    expect(JSON.stringify(v)).not.toContain('999');
    expect(v.nextMail.to.length).toBeGreaterThan(0);
  });

  it.each([
    [{ from: '2026-11-21', to: '2026-11-20' }],
    [{ from: '2025-01-01', to: '2026-01-02' }],
    [{ from: '2026-11-01' }],
    [{ from: '2026-13-01', to: '2026-13-02' }],
    [null],
  ])('refuses %j with 400 INVALID_REQUEST', async (q) => {
    // Act, Assess
    await expect(usageView(testDeps(aws), 'sakai', q)).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      status: 400,
    });
  });
});
