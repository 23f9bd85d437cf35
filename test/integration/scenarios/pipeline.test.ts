import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SQSEvent } from 'aws-lambda';
import { decodeChunk } from '../../../core/messages/chunk.ts';
import { NotFoundError } from '../../../core/shared/errors.ts';
import { finalizeJob } from '../../../core/finalize/finalize.ts';
import { getJobView, startDirectJob, startPresignedJob } from '../../../core/intake/operations.ts';
import { jobsPage } from '../../../core/intake/job-list.ts';
import { keys, reportQueueName } from '../../../core/jobs/keys.ts';
import type { PipelineDeps } from '../../../core/deps.ts';
import { runWorker, type WorkerSummary } from '../../../core/work/worker.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../helpers/aws.ts';
import { readZip } from '../../helpers/zip.ts';
import { drainFinalizeRequests } from '../../helpers/pipeline-jobs.ts';
import { createUploadHandler } from '../../../lambdas/upload/handler.ts';
import { localContext } from '../../../lambdas/shared/middleware.ts';

const aws = useTestAws();

const HEADER = ['id', '氏名', 'memo', 'amount'];

/**
 * 40 records; record 13 (line 16) has a missing column, record 27 (line 35) a NUL byte. Every fifth record
 * spans two lines (a quoted newline); a blank line and an all-empty record follow record 20.
 */
function sampleCsv(): { text: string; valid: Map<number, string[]> } {
  const lines = [HEADER.join(',')];
  const valid = new Map<number, string[]>();
  for (let n = 1; n <= 40; n++) {
    if (n === 13) lines.push('13,short');
    else if (n === 27) lines.push('27,nul\u0000here,x,1');
    else {
      const fields = [
        String(n),
        `山田 ${n}号`,
        n % 5 === 0 ? `line one\nline "two" ${n}` : n === 7 ? '=1+1' : ` spaced ${n} `,
        `${n * 100}`,
      ];
      valid.set(n, fields);
      lines.push(fields.map((f) => (/[",\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(','));
    }
    if (n === 20) lines.push('', ',,,');
  }
  return { text: lines.join('\r\n') + '\r\n', valid };
}

/** Runs the job's launched workers in this process until they go idle. */
async function runWorkers(
  deps: PipelineDeps,
  launcher: RecordingLauncher,
  token: string,
): Promise<WorkerSummary[]> {
  const launch = launcher.launches.find((l) => l.token === token);
  if (!launch) return [];
  return Promise.all(
    Array.from({ length: launch.count }, () =>
      runWorker(deps, { site: launch.site, token, waitSeconds: 0, idlePolls: 3, visibilitySeconds: 30 }),
    ),
  );
}

describe('Pipeline: split → workers → finalize on the embedded emulators', () => {
  let deps: PipelineDeps;
  let launcher: RecordingLauncher;
  let token: string;
  let summaries: WorkerSummary[];
  let requests: { site: string; token: string }[];
  let zipBytes: Buffer;
  const { text, valid } = sampleCsv();

  beforeAll(async () => {
    launcher = new RecordingLauncher();
    deps = testDeps(aws, {
      launcher,
      limits: { chunkMaxRecords: 7, recordsPerWorker: 10, maxWorkersPerJob: 3 },
    });
    const view = await startDirectJob(deps, 'sakai', Buffer.from(text, 'utf8'), {
      processor: 'json',
      fileName: 'clients.csv',
    });
    token = view.token;
    // A redelivered chunk: put a copy of one message back on the job queue.
    const queueUrl = (await deps.queues.queueUrl(reportQueueName('local', token)))!;
    const [m] = await deps.queues.receive(queueUrl, { max: 1, waitSeconds: 1, visibilitySeconds: 0 });
    await deps.queues.sendOne(queueUrl, m!.Body!, 'sakai', token);
    summaries = await runWorkers(deps, launcher, token);
    requests = await drainFinalizeRequests(deps);
    for (const r of requests) await finalizeJob(deps, r.site, r.token);
    zipBytes = await deps.objects.bytes(keys.result('sakai', token));
  });

  it('splits into chunks on its own queue and launches workers by size', async () => {
    // Prepare
    const chunks = Math.ceil(38 / 7);

    // Act
    const job = await deps.jobs.get('sakai', token);

    // Assess
    expect(launcher.launches).toEqual([{ site: 'sakai', token, count: 3 }]);
    expect(job).toMatchObject({
      totalRecords: 40,
      rejected: 2,
      totalChunks: chunks,
      chunksDone: chunks,
      encoding: 'utf-8',
      header: HEADER,
    });
    expect(job?.queueName).toBe(reportQueueName('local', token));
  });

  it('processes every chunk once although one was delivered twice', async () => {
    // Prepare
    const total = summaries.reduce(
      (s, w) => ({
        chunks: s.chunks + w.chunks,
        duplicates: s.duplicates + w.duplicates,
        records: s.records + w.records,
      }),
      {
        chunks: 0,
        duplicates: 0,
        records: 0,
      },
    );

    // Act
    const job = await deps.jobs.get('sakai', token);

    // Assess
    expect(total).toEqual({ chunks: Math.ceil(38 / 7), duplicates: 1, records: 38 });
    expect(job).toMatchObject({ succeeded: 38, failed: 0 });
  });

  it('sends exactly one finalize request; finalizing again is a no-op', async () => {
    // Prepare
    const again = { site: 'sakai', token };

    // Act
    const second = await finalizeJob(deps, again.site, again.token);

    // Assess
    expect(requests).toEqual([{ site: 'sakai', token, attempt: 1 }]);
    expect(second.state).toBe('SKIPPED');
  });

  it('ends PARTIAL, deletes the job queue and stops the workers', async () => {
    // Prepare
    const name = reportQueueName('local', token);

    // Act
    const job = await deps.jobs.get('sakai', token);

    // Assess
    expect(job?.state).toBe('PARTIAL');
    expect(job?.resultKey).toBe(keys.result('sakai', token));
    expect(await deps.queues.queueUrl(name)).toBeUndefined();
    expect(launcher.stops).toEqual([{ site: 'sakai', token }]);
  });

  it('writes a zip whose entries match the records: manifest.json, errors.csv, rows/<n>.json, results.csv', async () => {
    // Prepare
    const expectedRows = [...valid.keys()].map((n) => `rows/${n}.json`);

    // Act
    const entries = await readZip(zipBytes);

    // Assess
    expect(entries.map((e) => e.name)).toEqual([
      'manifest.json',
      'errors.csv',
      ...expectedRows,
      'results.csv',
    ]);
    for (const e of entries.slice(2, -1)) {
      const n = Number(/rows\/(\d+)\.json/.exec(e.name)![1]);
      const obj = JSON.parse(e.data.toString('utf8')) as Record<string, string>;
      expect(Object.entries(obj)).toEqual(HEADER.map((h, i) => [h, valid.get(n)![i]]));
    }
    const manifest = JSON.parse(entries[0]!.data.toString('utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      token,
      site: 'sakai',
      state: 'PARTIAL',
      encoding: 'utf-8',
      processor: 'json',
      fileName: 'clients.csv',
      counts: { total: 40, succeeded: 38, failed: 0, rejected: 2 },
    });
    expect(Object.keys(manifest.timings as object)).toEqual(
      expect.arrayContaining(['receivedAt', 'runningAt', 'splitDoneAt', 'finalizingAt']),
    );
  });

  it('lists the rejected records in errors.csv with their physical line and number', async () => {
    // Prepare
    const entries = await readZip(zipBytes);
    const errors = entries.find((e) => e.name === 'errors.csv')!.data;

    // Act
    const rows = parse(errors.subarray(3).toString('utf8')) as string[][];

    // Assess
    expect([...errors.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(rows.map((r) => r.slice(0, 3))).toEqual([
      ['line', 'record', 'code'],
      ['16', '13', 'COLUMN_COUNT'],
      ['35', '27', 'NUL_BYTE'],
    ]);
    expect(rows[2]![4]).toBe('27,nul\u2400here,x,1');
  });

  it('serves the job view with a download URL that returns the zip', async () => {
    // Prepare
    const view = await getJobView(deps, 'sakai', token);

    // Act
    const res = await fetch(view.download!.url);

    // Assess
    expect(view).toMatchObject({
      state: 'PARTIAL',
      rows: { total: 40, succeeded: 38, failed: 0, rejected: 2 },
    });
    expect(Buffer.from(await res.arrayBuffer()).equals(zipBytes)).toBe(true);
  });

  it("never shows a site another site's job", async () => {
    // Prepare
    const other = 'kawasaki';

    // Act
    const err = await getJobView(deps, other, token).catch((e: unknown) => e);
    const list = (await jobsPage(deps, other, null)).jobs;

    // Assess
    expect(err).toBeInstanceOf(NotFoundError);
    expect(list.map((v) => v.token)).not.toContain(token);
    expect(await deps.objects.size(keys.result(other, token))).toBeUndefined();
    expect(await deps.objects.size(keys.result('sakai', token))).toBeGreaterThan(0);
  });
});

describe('Pipeline: file-level rejection', () => {
  it('rejects a bad file without creating a queue or launching a worker', async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const body = Buffer.from('id,name,id\n1,a,b\n');

    // Act
    const view = await startDirectJob(deps, 'sakai', body, { processor: 'json' });

    // Assess
    expect(view.state).toBe('REJECTED');
    expect(view.error).toMatchObject({ code: 'DUPLICATE_HEADER', line: 1 });
    expect(launcher.launches).toEqual([]);
    expect(await deps.queues.queueUrl(reportQueueName('local', view.token))).toBeUndefined();
  });
});

describe('Pipeline: presigned upload split on its S3 event', () => {
  it('splits once when the same S3 event is delivered twice at the same time', async () => {
    // Prepare: a presigned job whose file has arrived, and its S3 event wrapped in an SQS message
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 2 } });
    const { token } = await startPresignedJob(deps, 'sakai', { processor: 'json', fileName: 'p.csv' });
    await deps.objects.put(keys.source('sakai', token), 'id,name\n1,a\n2,b\n3,c\n4,d\n5,e\n');
    const s3Event = {
      Records: [
        { s3: { object: { key: encodeURIComponent(keys.source('sakai', token)).replace(/%2F/g, '/') } } },
      ],
    };
    const sqsEvent = { Records: [{ messageId: 'm1', body: JSON.stringify(s3Event) }] } as unknown as SQSEvent;
    const handler = createUploadHandler(deps);

    // Act
    await Promise.all([handler(sqsEvent, localContext('upload')), handler(sqsEvent, localContext('upload'))]);
    const queueUrl = (await deps.queues.queueUrl(reportQueueName('local', token)))!;
    const messages = [];
    for (let batch; (batch = await deps.queues.receive(queueUrl, { max: 10, waitSeconds: 0 })).length > 0;)
      messages.push(...batch);

    // Assess
    expect(launcher.launches).toEqual([{ site: 'sakai', token, count: 1 }]);
    expect(await deps.jobs.get('sakai', token)).toMatchObject({
      state: 'RUNNING',
      upload: 'presigned',
      totalRecords: 5,
      totalChunks: 3,
    });
    expect(messages.map((m) => decodeChunk(m.Body!).chunk).sort()).toEqual([0, 1, 2]);
  });
});

describe('Pipeline: every accepted encoding', () => {
  const header = ['id', '氏名', 'memo'];
  const records = [
    ['1', 'ソフト表示', 'C:\\dir~x'],
    ['2', '髙橋①', 'a, b'],
    ['3', 'ミ～ル', 'line1\r\nline2'],
  ];
  const text = (sep: string) =>
    [header, ...records]
      .map((r) => r.map((f) => (/[",\r\n\t]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(sep))
      .join('\r\n') + '\r\n';

  it.each([
    ['utf-8-bom', () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text(','), 'utf8')])],
    ['cp932', () => iconv.encode(text(','), 'cp932')],
    ['utf-16le', () => Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(text('\t'), 'utf-16le')])],
  ])('processes a %s file: the workers read the records exactly as the split did', async (encoding, make) => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 1 } });

    // Act
    const view = await startDirectJob(deps, 'sakai', make(), { processor: 'json' });
    await runWorkers(deps, launcher, view.token);
    for (const r of await drainFinalizeRequests(deps)) await finalizeJob(deps, r.site, r.token);
    const entries = await readZip(await deps.objects.bytes(keys.result('sakai', view.token)));

    // Assess
    const manifest = JSON.parse(entries[0]!.data.toString('utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ state: 'SUCCEEDED', encoding, header });
    const rows = entries
      .filter((e) => e.name.startsWith('rows/'))
      .map((e) => JSON.parse(e.data.toString('utf8')) as unknown);
    expect(rows).toEqual(records.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))));
  });
});

describe('Pipeline: a file whose every record is rejected', () => {
  it('ends FAILED with every record in errors.csv, instead of waiting for workers forever', async () => {
    // Prepare: a valid header, then only records with a wrong column count
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const body = Buffer.from('id,name\n1\n2,b,extra\n3\n', 'utf8');

    // Act
    const view = await startDirectJob(deps, 'sakai', body, { processor: 'json' });
    await runWorkers(deps, launcher, view.token);
    const requests = await drainFinalizeRequests(deps);
    for (const r of requests) await finalizeJob(deps, r.site, r.token);
    const job = await deps.jobs.get('sakai', view.token);

    // Assess
    expect(requests).toEqual([{ site: 'sakai', token: view.token }]);
    expect(job?.state).toBe('FAILED');
    expect(job).toMatchObject({ totalRecords: 3, rejected: 3, succeeded: 0 });
    const entries = await readZip(await deps.objects.bytes(keys.result('sakai', view.token)));
    const errors = parse(
      entries
        .find((e) => e.name === 'errors.csv')!
        .data.subarray(3)
        .toString('utf8'),
    ) as string[][];
    expect(errors.slice(1).map((r) => [r[0], r[1], r[2]])).toEqual([
      ['2', '1', 'COLUMN_COUNT'],
      ['3', '2', 'COLUMN_COUNT'],
      ['4', '3', 'COLUMN_COUNT'],
    ]);
  });
});

describe('Pipeline: any decoded text reaches the zip unchanged', () => {
  it.each([
    ['characters outside the BMP (emoji, CJK extension B)', ['smile 😀 ok', '𠮷野家']],
    ['the noncharacters U+FFFE and U+FFFF (valid UTF-8)', ['a\uffffb', 'c\ufffed']],
  ])('carries %s through the queue to the zip', async (_what, names) => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const fields = names.map((name, i) => [String(i + 1), name] as const);
    const body = Buffer.from(['id,name', ...fields.map((f) => f.join(','))].join('\n') + '\n', 'utf8');

    // Act
    const view = await startDirectJob(deps, 'sakai', body, { processor: 'json' });
    await runWorkers(deps, launcher, view.token);
    for (const r of await drainFinalizeRequests(deps)) await finalizeJob(deps, r.site, r.token);
    const entries = await readZip(await deps.objects.bytes(keys.result('sakai', view.token)));

    // Assess
    const rows = entries
      .filter((e) => e.name.startsWith('rows/'))
      .map((e) => JSON.parse(e.data.toString('utf8')) as Record<string, string>);
    expect(rows).toEqual(fields.map(([id, name]) => ({ id, name })));
  });
});
