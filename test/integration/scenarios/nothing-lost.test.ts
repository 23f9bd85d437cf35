/**
 * Issue 9's core guarantees, on the embedded emulators: workers only ever read what the split validated (a
 * re-posted upload form is harmless, a changed source fails the job loudly), finalize checks the record-count
 * invariant, big headers are refused before anything is created, presigned jobs never uploaded expire, a
 * refused launch never strands a job, and a dead holder's finalize lease is released at once.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { finalizeJob } from '../../../core/finalize/finalize.ts';
import { startDirectJob, startPresignedJob, splitUploaded } from '../../../core/intake/operations.ts';
import { keys, reportQueueName } from '../../../core/jobs/keys.ts';
import type { PipelineDeps } from '../../../core/deps.ts';
import { LaunchFailedError, type LaunchRequest } from '../../../core/aws/task-launcher.ts';
import { reap, releaseDeadLeases } from '../../../core/reaper/reaper.ts';
import { runWorker } from '../../../core/work/worker.ts';
import { createUploadHandler } from '../../../lambdas/upload/handler.ts';
import { localContext } from '../../../lambdas/shared/middleware.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../helpers/aws.ts';
import { capturingChunks, withAdapters } from '../../helpers/faults.ts';
import { chunkRecords } from '../../../core/work/chunk-records.ts';
import { SourceChangedError } from '../../../core/shared/errors.ts';
import { checkZip, expectExactlyOnce } from '../../helpers/jepsen.ts';
import { csvOf } from '../../helpers/pipeline-jobs.ts';

const aws = useTestAws();
let launcher: RecordingLauncher;
let deps: PipelineDeps;

beforeAll(() => {
  launcher = new RecordingLauncher();
  deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 10 } });
});

/** Runs the job's launched workers (one after the other, so the test decides what happens between chunks). */
async function work(d: PipelineDeps, token: string, site = 'sakai'): Promise<void> {
  const count = launcher.launches.filter((l) => l.token === token).reduce((n, l) => n + l.count, 0);
  await Promise.all(
    Array.from({ length: count }, () =>
      runWorker(d, { site, token, waitSeconds: 0, idlePolls: 2, visibilitySeconds: 30 }),
    ),
  );
}

/** Delivers the finalize requests waiting on the finalize queue. */
async function finalizeWaiting(d: PipelineDeps): Promise<void> {
  for (;;) {
    const msgs = await d.queues.receive(d.env.finalizeQueueUrl, { max: 10, waitSeconds: 0 });
    if (msgs.length === 0) return;
    for (const m of msgs) {
      const r = JSON.parse(m.Body!) as { site: string; token: string };
      await finalizeJob(d, r.site, r.token);
      await d.queues.delete(d.env.finalizeQueueUrl, m.ReceiptHandle!);
    }
  }
}

/** Drops the finalize requests waiting (as if the finalize that took them died). */
async function discardWaiting(d: PipelineDeps): Promise<void> {
  for (let msgs; (msgs = await d.queues.receive(d.env.finalizeQueueUrl, { max: 10, waitSeconds: 0 })).length;)
    for (const m of msgs) await d.queues.delete(d.env.finalizeQueueUrl, m.ReceiptHandle!);
}

/** A presigned POST of `body` with the form's fields. */
async function post(upload: { url: string; fields: Record<string, string> }, body: string): Promise<number> {
  const form = new FormData();
  for (const [k, v] of Object.entries(upload.fields)) form.append(k, v);
  form.append('file', new Blob([body]), 'source.csv');
  return (await fetch(upload.url, { method: 'POST', body: form })).status;
}

/** `n,name n` records; the same length as {@link otherCsvOf} of the same count. */
const rowContent = (n: number, data: Buffer) => {
  const row = JSON.parse(data.toString('utf8')) as { id?: string; name?: string };
  return row.id === String(n) && row.name === `name ${n}` ? undefined : `holds ${data.toString('utf8')}`;
};
/** The same shape and length as csvOf(records), other values (and a few records with a field too many). */
const otherCsvOf = (records: number) =>
  csvOf(records)
    .split('\n')
    .map((l, i) => (i > 0 && i % 7 === 0 ? l.replace('name ', 'na,e ') : l.replace('name', 'nome')))
    .join('\n');

describe('Scenario: the upload form is posted again while the job runs', () => {
  it('ends SUCCEEDED with every record of the validated file exactly once: workers never read the re-posted file', async () => {
    // Prepare: a presigned job, its file posted and split (as the S3 event does)
    const records = 60;
    const first = csvOf(records);
    const second = otherCsvOf(records);
    expect(Buffer.byteLength(second)).toBe(Buffer.byteLength(first));
    const { token, upload } = await startPresignedJob(deps, 'sakai', { processor: 'json' });
    expect(await post(upload, first)).toBe(204);
    await splitUploaded(deps, keys.source('sakai', token));

    // Act: the same form posted again with another file of the same length, then the workers and the finalize
    const again = await post(upload, second);
    await splitUploaded(deps, keys.source('sakai', token));
    await work(deps, token);
    await finalizeWaiting(deps);

    // Assess
    expect(again).toBe(204);
    const job = (await deps.jobs.get('sakai', token))!;
    expect(job).toMatchObject({
      state: 'SUCCEEDED',
      sourceKey: keys.movedSource('sakai', token),
      totalRecords: records,
      succeeded: records,
    });
    const check = await checkZip(await deps.objects.bytes(job.resultKey!), records, { content: rowContent });
    expectExactlyOnce(check);
  });

  it('fails the job with SOURCE_CHANGED when the bytes a chunk names change under it, every record accounted for', async () => {
    // Prepare: a direct job split; then its source object is replaced (a bug, or someone with bucket access)
    const records = 50;
    const view = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(records)), { processor: 'json' });
    await deps.objects.put(keys.source('sakai', view.token), otherCsvOf(records));

    // Act
    await work(deps, view.token);
    await finalizeWaiting(deps);

    // Assess
    const job = (await deps.jobs.get('sakai', view.token))!;
    expect(job.state).toBe('FAILED');
    expect(job.error?.code).toBe('SOURCE_CHANGED');
    const check = await checkZip(await deps.objects.bytes(job.resultKey!), records);
    expect(check.missing).toEqual([]);
    expect(check.duplicated).toEqual([]);
    expect(new Set(check.errors.map((e) => e.code))).toEqual(new Set(['SOURCE_CHANGED']));
    expect(check.errors).toHaveLength(records);
  });
});

describe('Function: chunkRecords', () => {
  it("fails loudly (SourceChangedError) when its parse and the split's disagree on which records are rejected", async () => {
    // Prepare: a job whose record 3 the split rejected (an extra field); its first chunk as the split sent it
    const capture = capturingChunks(deps);
    const view = await startDirectJob(capture.deps, 'sakai', Buffer.from(csvOf(8, [3])), {
      processor: 'json',
    });
    const job = (await deps.jobs.get('sakai', view.token))!;
    const chunk = capture.chunks.find((c) => c.n <= 3 && 3 < c.n + c.records)!;
    const max = deps.limits.maxRecordBytes;

    // Act
    const right = await chunkRecords(job, chunk, deps.objects, max, new Set([3]));
    const forgotten = chunkRecords(job, chunk, deps.objects, max, new Set());
    const extra = chunkRecords(job, chunk, deps.objects, max, new Set([3, chunk.n]));

    // Assess
    expect(right.map(([n]) => n)).not.toContain(3);
    expect(right).toHaveLength(chunk.records - 1);
    await expect(forgotten).rejects.toBeInstanceOf(SourceChangedError);
    await expect(extra).rejects.toBeInstanceOf(SourceChangedError);
  });
});

describe('Function: finalizeJob (the count invariant)', () => {
  it('ends FAILED with COUNTS_DISAGREE and lists the unaccounted records when the total is forged', async () => {
    // Prepare: the split records two records more than the file has
    const records = 30;
    const forged = withAdapters(deps, {
      jobs: {
        around: {
          recordSplit: (_call, site, token, plan) =>
            deps.jobs.recordSplit(site, token, { ...plan, totalRecords: plan.totalRecords + 2 }),
        },
      },
    });
    const view = await startDirectJob(forged, 'sakai', Buffer.from(csvOf(records)), { processor: 'json' });

    // Act
    await work(deps, view.token);
    await finalizeWaiting(deps);

    // Assess
    const job = (await deps.jobs.get('sakai', view.token))!;
    expect(job.state).toBe('FAILED');
    expect(job.error?.code).toBe('COUNTS_DISAGREE');
    const check = await checkZip(await deps.objects.bytes(job.resultKey!), records + 2);
    expect(check.errors.map((e) => [e.n, e.code])).toEqual([
      [records + 1, 'COUNTS_DISAGREE'],
      [records + 2, 'COUNTS_DISAGREE'],
    ]);
    expect(check.missing).toEqual([]);
  });

  it('ends FAILED with COUNTS_DISAGREE when a chunk was counted with fewer records than its part holds', async () => {
    // Prepare: the count of chunk 0 is forged (one success fewer)
    const view = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(25)), { processor: 'json' });
    const forged = withAdapters(deps, {
      jobs: {
        around: {
          countChunk: (call, site, token, chunk, counts, gaveUp) =>
            chunk === 0
              ? deps.jobs.countChunk(
                  site,
                  token,
                  chunk,
                  { ...counts, succeeded: counts.succeeded - 1 },
                  gaveUp,
                )
              : call(),
        },
      },
    });

    // Act
    await work(forged, view.token);
    await finalizeWaiting(deps);

    // Assess
    const job = (await deps.jobs.get('sakai', view.token))!;
    expect({ state: job.state, code: job.error?.code }).toEqual({ state: 'FAILED', code: 'COUNTS_DISAGREE' });
    expect(job.error?.message).toMatch(/24 succeeded \+ 0 failed \+ 0 rejected/);
  });
});

describe('Limits: a clear 4xx, nothing stuck, nothing left behind', () => {
  it('rejects a 900 KB header (9,000 columns) with 422 HEADER_TOO_LARGE; no queue, no worker; the reaper finds nothing to do', async () => {
    // Prepare
    const header = Array.from(
      { length: 9000 },
      (_, i) => `column_${String(i).padStart(5, '0')}_${'x'.repeat(88)}`,
    );
    const row = header.map((_, i) => String(i));
    const csv = `${header.join(',')}\n${row.join(',')}\n`;
    expect(header.join(',').length).toBeGreaterThan(900_000);
    const handler = createUploadHandler(deps);
    const tokenBefore = launcher.launches.length;

    // Act
    const res = (await handler(
      {
        httpMethod: 'POST',
        resource: '/jobs',
        path: '/jobs',
        headers: { 'content-type': 'text/csv' },
        queryStringParameters: { processor: 'json' },
        body: Buffer.from(csv).toString('base64'),
        isBase64Encoded: true,
        requestContext: { authorizer: { site: 'sakai' }, httpMethod: 'POST', resourcePath: '/jobs' },
      } as never,
      localContext('upload'),
    )) as { statusCode: number; body: string };
    const view = JSON.parse(res.body) as { token: string; state: string; error?: { code: string } };
    const report = await reap(withAdapters(deps, { jobs: { around: { listActive: async () => [] } } }));

    // Assess
    expect(res.statusCode).toBe(422);
    expect(view.state).toBe('REJECTED');
    expect(view.error?.code).toBe('HEADER_TOO_LARGE');
    expect(await deps.queues.queueUrl(reportQueueName('local', view.token))).toBeUndefined();
    expect(launcher.launches.length).toBe(tokenBefore);
    expect((await deps.jobs.listActive()).map((j) => j.token)).not.toContain(view.token);
    expect(report.relaunched).toEqual([]);
  });

  it('answers 400 INVALID_REQUEST to a 500 KB fileName and creates no job', async () => {
    // Prepare
    const handler = createUploadHandler(deps);
    const before = (await deps.jobs.list('kawasaki')).length;

    // Act
    const res = (await handler(
      {
        httpMethod: 'POST',
        resource: '/uploads',
        path: '/uploads',
        headers: { 'content-type': 'application/json' },
        queryStringParameters: null,
        body: JSON.stringify({ fileName: 'a'.repeat(500_000) }),
        isBase64Encoded: false,
        requestContext: { authorizer: { site: 'kawasaki' }, httpMethod: 'POST', resourcePath: '/uploads' },
      } as never,
      localContext('upload'),
    )) as { statusCode: number; body: string };

    // Assess
    expect(res.statusCode).toBe(400);
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('INVALID_REQUEST');
    expect((await deps.jobs.list('kawasaki')).length).toBe(before);
  });

  it('expires a presigned job never uploaded once its form expired plus the grace, and keeps one whose file arrived', async () => {
    // Prepare
    const never = await startPresignedJob(deps, 'kashima', { processor: 'json' });
    const arrived = await startPresignedJob(deps, 'kashima', { processor: 'json' });
    await deps.objects.put(keys.source('kashima', arrived.token), csvOf(3));
    const t = deps.timings;
    const scoped = withAdapters(deps, {
      jobs: {
        around: {
          listActive: async (call) =>
            (await call()).filter((j) => j.token === never.token || j.token === arrived.token),
        },
      },
    });
    const later = (s: number) => new Date(Date.now() + s * 1000);

    // Act
    const early = await reap(scoped, { now: later(t.uploadFormSeconds) });
    const late = await reap(scoped, { now: later(t.uploadFormSeconds + t.uploadExpiryGraceSeconds + 5) });

    // Assess
    expect(early.expired).toEqual([]);
    expect(late.expired).toEqual([{ site: 'kashima', token: never.token }]);
    const expired = (await deps.jobs.get('kashima', never.token))!;
    expect(expired).toMatchObject({ state: 'EXPIRED', error: { code: 'UPLOAD_EXPIRED' } });
    expect(expired.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect((await deps.jobs.get('kashima', arrived.token))!.state).toBe('RECEIVED');
  });

  it('gives every job item a TTL from its creation', async () => {
    // Act
    const { token } = await startPresignedJob(deps, 'kashima', { processor: 'json' });

    // Assess
    const job = (await deps.jobs.get('kashima', token))!;
    expect(job.expiresAt).toBeGreaterThan(Date.now() / 1000 + (deps.limits.retentionDays - 1) * 86_400);
  });
});

describe('Scenario: RunTask refuses the split launch', () => {
  it('leaves a RUNNING job with its chunks and totals recorded; the reaper launches its workers after the backoff', async () => {
    // Prepare: every task of the split's launch refused
    const refusing = new RecordingLauncher();
    let refuse = true;
    const launch = refusing.launch.bind(refusing);
    refusing.launch = async (req: LaunchRequest) => {
      if (refuse) throw new LaunchFailedError([], req.count, 'injected: RESOURCE:VCPU quota');
      return launch(req);
    };
    // A budget of its own: the file's other scenarios leave jobs asking for workers in theirs.
    const d = { ...deps, launcher: refusing, grants: testDeps(aws).grants };

    // Act
    const view = await startDirectJob(d, 'marifu', Buffer.from(csvOf(40)), { processor: 'json', workers: 2 });
    const stranded = (await d.jobs.get('marifu', view.token))!;
    const scoped = withAdapters(d, {
      jobs: { around: { listActive: async (call) => (await call()).filter((j) => j.token === view.token) } },
    });
    const beforeBackoff = await reap(scoped, { graceSeconds: 0 });
    refuse = false;
    const afterBackoff = await reap(scoped, {
      graceSeconds: 0,
      now: new Date(Date.now() + d.timings.launchRetryBaseSeconds * 1000 + 1000),
    });

    // Assess
    expect(stranded).toMatchObject({
      state: 'RUNNING',
      totalChunks: 4,
      totalRecords: 40,
      launchFailures: 1,
      lastLaunchError: expect.stringMatching(/RESOURCE:VCPU/),
    });
    const queueUrl = (await d.queues.queueUrl(reportQueueName('local', view.token)))!;
    expect(queueUrl).toBeDefined();
    expect(beforeBackoff.relaunched).toEqual([]);
    expect(afterBackoff.relaunched).toEqual([{ site: 'marifu', token: view.token, workers: 2 }]);
    expect(refusing.launches).toEqual([{ site: 'marifu', token: view.token, count: 2 }]);
    expect((await d.jobs.get('marifu', view.token))!.launchFailures).toBe(0);
  });
});

describe('Function: releaseDeadLeases', () => {
  it("releases the finalize lease of a dead local runtime and asks for the finalize again; a live holder's stays", async () => {
    // Prepare: two jobs FINALIZING, one held by a runtime that is gone
    const start = async (instance: string) => {
      const view = await startDirectJob(deps, 'kawasaki', Buffer.from(csvOf(5)), { processor: 'json' });
      await work(deps, view.token, 'kawasaki');
      await discardWaiting(deps);
      await deps.jobs.beginFinalize('kawasaki', view.token, new Date(), 600, `local:${instance}:r1`);
      return view.token;
    };
    const dead = await start('dead-instance');
    const alive = await start('this-instance');
    const scoped = withAdapters(deps, {
      jobs: {
        around: {
          listActive: async (call) => (await call()).filter((j) => j.token === dead || j.token === alive),
        },
      },
    });

    // Act
    const released = await releaseDeadLeases(scoped, (h) => !h.startsWith('local:this-instance:'));
    await finalizeWaiting(deps);

    // Assess
    expect(released).toEqual([{ site: 'kawasaki', token: dead }]);
    expect((await deps.jobs.get('kawasaki', dead))!.state).toBe('SUCCEEDED');
    expect((await deps.jobs.get('kawasaki', alive))!.state).toBe('FINALIZING');
  });
});
