import { createHash } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiTokens } from '../../../../core/intake/tokens.ts';
import { dynamoClient } from '../../../../core/aws/clients.ts';
import { JobStore, type Job } from '../../../../core/jobs/store.ts';
import { newJobToken } from '../../../../core/jobs/keys.ts';
import { createTestJob, useTestAws } from '../../../helpers/aws.ts';
import { isCountingAttribute } from '../../../../core/jobs/chunk-count.ts';
import { isConditionFailure } from '../../../../core/shared/dynamo.ts';
import { UsageStore } from '../../../../core/usage/store.ts';

const aws = useTestAws();
let jobs: JobStore;

beforeAll(async () => {
  jobs = new JobStore(aws.table);
});

const newJob = (site = 'sakai'): Promise<Job> => createTestJob(jobs, site);

/** The split's plan of a job of `totalChunks` chunks of 10 records. */
function plan(totalChunks: number) {
  const at = new Date().toISOString();
  return {
    header: ['id', 'name'],
    delimiter: ',',
    workers: 1,
    totalChunks,
    totalRecords: totalChunks * 10,
    rejected: 0,
    splitDoneAt: at,
  };
}

/** A RUNNING job whose split recorded `totalChunks` chunks (as the split does: before RUNNING). */
async function runningJob(totalChunks = 1): Promise<Job> {
  const job = await newJob();
  await jobs.recordSplit(job.site, job.token, plan(totalChunks));
  await jobs.transition(job.site, job.token, 'RUNNING', { runningAt: new Date().toISOString() });
  return job;
}

describe('Class: JobStore', () => {
  it('creates a RECEIVED job once; a second create of the same token is refused', async () => {
    // Prepare
    const job = await newJob();

    // Act
    const again = await jobs.create({ ...job }).catch((err: unknown) => err);
    const stored = await jobs.get(job.site, job.token);

    // Assess
    expect((again as Error).name).toBe('ConditionalCheckFailedException');
    expect(stored).toMatchObject({
      site: 'sakai',
      token: job.token,
      state: 'RECEIVED',
      chunksDone: 0,
      succeeded: 0,
      failed: 0,
    });
    expect(Object.keys(stored!)).not.toContain('pk');
  });

  it('moves RUNNING→FINALIZING once: a second transition returns undefined', async () => {
    // Prepare
    const job = await runningJob(1);

    // Act
    const first = await jobs.transition(job.site, job.token, 'FINALIZING', { finalizingAt: 'a' });
    const second = await jobs.transition(job.site, job.token, 'FINALIZING', { finalizingAt: 'b' });

    // Assess
    expect(first?.state).toBe('FINALIZING');
    expect(second).toBeUndefined();
    expect((await jobs.get(job.site, job.token))?.finalizingAt).toBe('a');
  });

  it('lets exactly one of many concurrent callers move a job to FINALIZING', async () => {
    // Prepare
    const job = await runningJob(1);

    // Act
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        jobs.transition(job.site, job.token, 'FINALIZING', { finalizingAt: String(i) }),
      ),
    );

    // Assess
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
  });

  it('refuses transitions the state machine does not allow, and unknown jobs', async () => {
    // Prepare
    const job = await newJob();

    // Act
    const skip = await jobs.transition(job.site, job.token, 'FINALIZING');
    const done = await jobs.transition(job.site, job.token, 'SUCCEEDED');
    const unknown = await jobs.transition('sakai', newJobToken(), 'RUNNING');

    // Assess
    expect(skip).toBeUndefined();
    expect(done).toBeUndefined();
    expect(unknown).toBeUndefined();
    expect((await jobs.get(job.site, job.token))?.state).toBe('RECEIVED');
    expect(await jobs.get('sakai', newJobToken())).toBeUndefined();
  });

  it('counts a chunk once when it is delivered twice', async () => {
    // Prepare
    const job = await runningJob(2);

    // Act
    const first = await jobs.countChunk(job.site, job.token, 0, { succeeded: 9, failed: 1 });
    const again = await jobs.countChunk(job.site, job.token, 0, { succeeded: 9, failed: 1 });

    // Assess
    // The counting write answers the job's totals so far (the failure-rate rule reads them)
    expect(first).toEqual({ counted: true, complete: false, totals: { succeeded: 9, failed: 1 } });
    expect(again).toEqual({ counted: false, complete: false });
    expect(await jobs.get(job.site, job.token)).toMatchObject({ chunksDone: 1, succeeded: 9, failed: 1 });
  });

  it('counts a chunk once under concurrent duplicate deliveries', async () => {
    // Prepare
    const job = await runningJob(3);

    // Act
    const results = await Promise.all(
      Array.from({ length: 10 }, () => jobs.countChunk(job.site, job.token, 1, { succeeded: 5, failed: 0 })),
    );

    // Assess
    expect(results.filter((r) => r.counted)).toHaveLength(1);
    expect(await jobs.get(job.site, job.token)).toMatchObject({ chunksDone: 1, succeeded: 5, failed: 0 });
  });

  it('tells exactly one caller that the job is complete (chunks counted concurrently, each three times)', async () => {
    // Prepare
    const chunks = 12;
    const job = await runningJob(chunks);

    // Act
    const results = await Promise.all(
      Array.from({ length: chunks * 3 }, (_, i) =>
        jobs.countChunk(job.site, job.token, i % chunks, { succeeded: 10, failed: 0 }),
      ),
    );

    // Assess
    expect(results.filter((r) => r.counted)).toHaveLength(chunks);
    expect(results.filter((r) => r.complete)).toHaveLength(1);
    expect(await jobs.get(job.site, job.token)).toMatchObject({
      chunksDone: chunks,
      succeeded: chunks * 10,
      totalChunks: chunks,
    });
  });

  it('tells exactly one of the workers that race on the last chunks that the job is complete', async () => {
    // Prepare
    const chunks = 5;
    const trials = await Promise.all(Array.from({ length: 12 }, () => runningJob(chunks)));

    // Act
    const outcomes = await Promise.all(
      trials.map(async (job, t) => {
        const counts = Array.from({ length: chunks }, (_, c) =>
          new Promise((r) => setTimeout(r, (c * 3 + t) % 7)).then(() =>
            jobs.countChunk(job.site, job.token, c, { succeeded: 10, failed: 0 }),
          ),
        );
        return (await Promise.all(counts)).filter((r) => r.complete).length;
      }),
    );

    // Assess
    expect(outcomes).toEqual(trials.map(() => 1));
  });

  it('records the split plan only while the job is RECEIVED, and the same plan again when the split is re-run', async () => {
    // Prepare
    const job = await newJob();

    // Act
    const first = await jobs.recordSplit(job.site, job.token, plan(3));
    const again = await jobs.recordSplit(job.site, job.token, plan(3));
    await jobs.transition(job.site, job.token, 'RUNNING', { runningAt: new Date().toISOString() });
    const late = await jobs.recordSplit(job.site, job.token, plan(4));

    // Assess
    expect([first, again, late]).toEqual([true, true, false]);
    expect(await jobs.get(job.site, job.token)).toMatchObject({ state: 'RUNNING', totalChunks: 3 });
  });

  it('does not count chunks of a job that is not RUNNING', async () => {
    // Prepare
    const job = await runningJob(1);
    await jobs.transition(job.site, job.token, 'FINALIZING');

    // Act
    const r = await jobs.countChunk(job.site, job.token, 0, { succeeded: 1, failed: 0 });

    // Assess
    expect(r).toEqual({ counted: false, complete: false });
    expect((await jobs.get(job.site, job.token))?.chunksDone).toBe(0);
  });

  it("keeps each site's jobs in its own partition", async () => {
    // Prepare
    const a = await newJob('sakai');
    const b = await newJob('kawasaki');

    // Act
    const crossA = await jobs.get('kawasaki', a.token);
    const crossB = await jobs.get('sakai', b.token);
    const listB = await jobs.list('kawasaki');
    const crossMove = await jobs.transition('kawasaki', a.token, 'RUNNING');

    // Assess
    expect(crossA).toBeUndefined();
    expect(crossB).toBeUndefined();
    expect(listB.map((j) => j.token)).toEqual([b.token]);
    expect(crossMove).toBeUndefined();
    expect((await jobs.get('sakai', a.token))?.state).toBe('RECEIVED');
  });
});

describe('Class: JobStore (what a caller sees)', () => {
  it('knows which chunks were counted, and shows none of the counting bookkeeping', async () => {
    // Prepare
    const job = await runningJob(2);

    // Act
    const before = await jobs.isChunkCounted(job.site, job.token, 1);
    await jobs.countChunk(job.site, job.token, 1, { succeeded: 10, failed: 0 });
    const after = [
      await jobs.isChunkCounted(job.site, job.token, 1),
      await jobs.isChunkCounted(job.site, job.token, 0),
    ];
    const stored = await jobs.get(job.site, job.token);

    // Assess
    expect(before).toBe(false);
    expect(after).toEqual([true, false]);
    expect(stored).toMatchObject({ chunksDone: 1, succeeded: 10 });
    expect(Object.keys(stored!).filter((k) => /^chunks\d+$/.test(k) || k === 'totalSeen')).toEqual([]);
  });

  it('answers the chunks counted so far, each once, in order, across chunk sets (what a stopped job zips)', async () => {
    // Prepare: 2,500 chunks spread over three chunk sets; some counted, one of them twice
    const job = await runningJob(2500);
    const counted = [2400, 7, 0, 1999, 1000, 999];
    for (const c of [...counted, 7])
      await jobs.countChunk(job.site, job.token, c, { succeeded: 1, failed: 0 });

    // Act
    const chunks = await jobs.countedChunks(job.site, job.token, 2500);
    const none = await jobs.countedChunks(job.site, job.token, 0);
    const firstSetOnly = await jobs.countedChunks(job.site, job.token, 1000);

    // Assess
    expect(chunks).toEqual([0, 7, 999, 1000, 1999, 2400]);
    expect(none).toEqual([]);
    expect(firstSetOnly).toEqual([0, 7, 999]);
  });

  it.each([
    ['chunks0', true],
    ['chunks12', true],
    ['totalSeen', true],
    ['chunksDone', false],
    ['chunks', false],
    ['xchunks1', false],
    ['chunks1x', false],
    ['totalSeenx', false],
  ] as const)('isCountingAttribute(%s) is %s', (name, expected) => {
    // Prepare
    const n = name;

    // Act
    const counting = isCountingAttribute(n);

    // Assess
    expect(counting).toBe(expected);
  });

  it("lists a site's jobs only, newest first, up to the limit, and nothing else of its partition", async () => {
    // Prepare
    const site = 'listing-site';
    const at = (d: number) => `2030-01-0${d}T00:00:00.000Z`;
    for (const d of [2, 1, 3]) {
      await jobs.create({
        site,
        token: newJobToken(),
        upload: 'direct',
        processor: 'json',
        sourceKey: 'k',
        receivedAt: at(d),
      });
    }
    await new UsageStore(aws.table).add(site, '2030-01-01', 'main', 'job-x', {
      jobs: 1,
      rows: 1,
      failedRows: 0,
      rejectedJobs: 0,
    });

    // Act
    const all = await jobs.list(site);
    const two = await jobs.list(site, 2);

    // Assess
    expect(all.map((j) => j.receivedAt)).toEqual([at(3), at(2), at(1)]);
    expect(two.map((j) => j.receivedAt)).toEqual([at(3), at(2)]);
  });

  it('throws every failure of a write that is not its condition, never taking it for "already done"', async () => {
    // Prepare
    const missing = new JobStore('no-such-table');

    // Act
    const count = await missing
      .countChunk('sakai', newJobToken(), 0, { succeeded: 1, failed: 0 })
      .catch((e: unknown) => e);
    const move = await missing.transition('sakai', newJobToken(), 'RUNNING').catch((e: unknown) => e);

    // Assess
    expect((count as Error).name).toBe('ResourceNotFoundException');
    expect((move as Error).name).toBe('ResourceNotFoundException');
  });

  it('recognises a condition failure by its name too (an error from another copy of the SDK)', () => {
    // Prepare
    const foreign = Object.assign(new Error('The conditional request failed'), {
      name: 'ConditionalCheckFailedException',
    });

    // Act
    const verdicts = [
      isConditionFailure(foreign),
      isConditionFailure(new Error('x')),
      isConditionFailure({ name: 'ResourceNotFoundException' }),
    ];

    // Assess
    expect(verdicts).toEqual([true, false, false]);
  });
});

describe('Function: beginFinalize / releaseFinalize (the finalize lease)', () => {
  const t0 = new Date('2030-01-01T00:00:00.000Z');
  const after = (ms: number) => new Date(t0.getTime() + ms);

  it('lets one finalize start, refuses another while the lease lasts, and lets a later one take over a dead one', async () => {
    // Prepare
    const job = await runningJob(1);

    // Act
    const first = await jobs.beginFinalize(job.site, job.token, t0, 60, 'first');
    const during = await jobs.beginFinalize(job.site, job.token, after(60_000), 60, 'second');
    const takeover = await jobs.beginFinalize(job.site, job.token, after(60_001), 60, 'third');

    // Assess
    expect(first).toMatchObject({
      state: 'FINALIZING',
      finalizingAt: t0.toISOString(),
      finalizeHolder: 'first',
    });
    expect(during).toBeUndefined();
    expect(takeover).toMatchObject({ state: 'FINALIZING', finalizeHolder: 'third' });
    expect(takeover?.finalizingAt).toBe(after(60_001).toISOString());
  });

  it('never starts the finalize of a job that is not running, or of no job', async () => {
    // Prepare
    const received = await newJob();
    const ended = await runningJob(1);
    await jobs.transition(ended.site, ended.token, 'FAILED');

    // Act
    const early = await jobs.beginFinalize(received.site, received.token, t0, 60, 'x');
    const late = await jobs.beginFinalize(ended.site, ended.token, after(3_600_000), 60, 'x');
    const none = await jobs.beginFinalize('sakai', newJobToken(), t0, 60, 'x');

    // Assess
    expect([early, late, none]).toEqual([undefined, undefined, undefined]);
    expect((await jobs.get(received.site, received.token))?.state).toBe('RECEIVED');
  });

  it('releases only the lease it names, so the next finalize may start at once', async () => {
    // Prepare
    const job = await runningJob(1);
    await jobs.beginFinalize(job.site, job.token, t0, 600, 'first');

    // Act
    const wrong = await jobs.releaseFinalize(job.site, job.token, after(1));
    const blocked = await jobs.beginFinalize(job.site, job.token, after(2), 600, 'second');
    const released = await jobs.releaseFinalize(job.site, job.token, t0.toISOString());
    const next = await jobs.beginFinalize(job.site, job.token, after(3), 600, 'second');

    // Assess
    expect([wrong, blocked, released]).toEqual([false, undefined, true]);
    expect(next).toMatchObject({ state: 'FINALIZING', finalizeHolder: 'second' });
  });

  it('releases nothing of a job that is no longer finalizing', async () => {
    // Prepare
    const job = await runningJob(1);
    await jobs.beginFinalize(job.site, job.token, t0, 600, 'first');
    await jobs.transition(job.site, job.token, 'SUCCEEDED', { finalizingAt: t0.toISOString() });

    // Act
    const released = await jobs.releaseFinalize(job.site, job.token, t0);

    // Assess
    expect(released).toBe(false);
    expect(await jobs.get(job.site, job.token)).toMatchObject({
      state: 'SUCCEEDED',
      finalizingAt: t0.toISOString(),
    });
  });
});

describe('Class: ApiTokens', () => {
  it('issues a token bound to one site and authenticates it', async () => {
    // Prepare
    const tokens = new ApiTokens(aws.table);

    // Act
    const sakai = await tokens.issue('sakai', 'test');
    const kawasaki = await tokens.issue('kawasaki');

    // Assess
    expect(sakai).not.toBe(kawasaki);
    expect(await tokens.authenticate(`Bearer ${sakai}`)).toBe('sakai');
    expect(await tokens.authenticate(`bearer ${kawasaki}`)).toBe('kawasaki');
    expect(await tokens.authenticate(`Bearer ${sakai}x`)).toBeUndefined();
    expect(await tokens.authenticate(sakai)).toBeUndefined();
    expect(await tokens.authenticate('Bearer ')).toBeUndefined();
    expect(await tokens.authenticate(`Bearer  ${sakai}`)).toBe('sakai');
    expect(await tokens.authenticate(`Bearer ${sakai} x`)).toBeUndefined();
    expect(await tokens.authenticate(`x Bearer ${sakai}`)).toBeUndefined();
    expect(await tokens.authenticate(`xBearer ${sakai}`)).toBeUndefined();
    expect(await tokens.authenticate(undefined)).toBeUndefined();
  });

  it('stores only a hash of the token, never the token itself', async () => {
    // Prepare
    const tokens = new ApiTokens(aws.table);
    const token = await tokens.issue('kashima', 'scan');
    const secret = token.slice('rf_kashima_'.length); // the random part (base64url may itself hold '_')

    // Act
    const items = (await dynamoClient().send(new ScanCommand({ TableName: aws.table }))).Items ?? [];
    const dump = JSON.stringify(items);

    // Assess
    expect(dump).not.toContain(token);
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(dump).not.toContain(secret);
    expect(dump).toContain(createHash('sha256').update(token).digest('hex'));
    expect(items.find((i) => i.site === 'kashima' && i.label === 'scan')).toBeDefined();
  });
});
