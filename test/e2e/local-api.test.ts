import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStage } from '../../config/index.ts';
import type { JobView } from '../../core/intake/operations.ts';
import { reportQueueName } from '../../core/jobs/keys.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { ZipWriter } from '../../core/messages/zip.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { readZipText } from '../helpers/zip.ts';
import { smoke } from '../../cli/smoke.ts';

let dir: string;
let rt: LocalRuntime;
let sakai: string;
let kawasaki: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-api-'));
  rt = await LocalRuntime.start({ stateDir: dir });
  sakai = await rt.issueToken('sakai');
  kawasaki = await rt.issueToken('kawasaki');
});

afterAll(async () => {
  await rt?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface ApiResponse<T> {
  readonly status: number;
  readonly body: T;
}

type ErrorBody = { error: { code: string; message: string; line?: number } };

async function api<T = JobView & Partial<ErrorBody>>(
  method: string,
  path: string,
  o: { token?: string; body?: Buffer | string; type?: string } = {},
): Promise<ApiResponse<T>> {
  const res = await fetch(rt.apiUrl + path, {
    method,
    headers: {
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...(o.type ? { 'content-type': o.type } : {}),
    },
    body: o.body,
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

/** A request over node:http with the given agent (connection pool), failing after 15 s. */
function httpRequest(
  agent: http.Agent,
  method: string,
  path: string,
  token?: string,
  body?: Buffer,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers = {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-length': String(body.length) } : {}),
    };
    const req = http.request(rt.apiUrl + path, { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path}: no answer in 15 s`)));
    req.end(body);
  });
}

async function waitForEnd(token: string, apiToken: string, timeoutMs = 40_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api<JobView>('GET', `/jobs/${token}`, { token: apiToken });
    if (r.status === 200 && isTerminal(r.body.state)) return r.body;
    if (Date.now() > until) throw new Error(`job ${token} still ${r.body.state} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Worker log files the local launcher wrote for a job: one per launched worker. */
function workerLogs(token: string): string[] {
  const logs = join(dir, 'logs');
  return existsSync(logs) ? readdirSync(logs).filter((f) => f.includes(token)) : [];
}

async function xlsx(): Promise<Buffer> {
  const parts: Buffer[] = [];
  const zip = new ZipWriter(async (b) => void parts.push(b));
  await zip.addEntry('[Content_Types].xml', '<?xml version="1.0"?><Types/>');
  await zip.addEntry('xl/worksheets/sheet1.xml', '<?xml version="1.0"?><worksheet/>');
  await zip.finish();
  return Buffer.concat(parts);
}

describe('Local API: POST /jobs rejects bad files', () => {
  const cases: [string, () => Promise<Buffer> | Buffer, number | undefined][] = [
    ['EMPTY_FILE', () => Buffer.alloc(0), undefined],
    ['NOT_CSV', xlsx, undefined],
    [
      'UNDECODABLE',
      () =>
        Buffer.concat([Buffer.from('id,name\n1,a\n2,'), Buffer.from([0x85, 0x40, 0xa0]), Buffer.from('\n')]),
      3,
    ],
    ['UNTERMINATED_QUOTE', () => Buffer.from('id,name\n1,a\n2,"never closed\n3,c\n'), 3],
    ['DUPLICATE_HEADER', () => Buffer.from('id,name,id\n1,2,3\n'), 1],
    ['BLANK_HEADER', () => Buffer.from('id,,name\n1,2,3\n'), 1],
    ['NO_DATA_ROWS', () => Buffer.from('id,name\n\n,\n'), 1],
    [
      'RECORD_TOO_LARGE',
      () =>
        Buffer.from(`id,data\n1,small\n2,${'x'.repeat(getStage('local').limits.maxRecordBytes + 10)}\n3,c\n`),
      3,
    ],
  ];

  it.each(cases)(
    '%s: a 422 with the code and the line; the job is REJECTED with no queue and no worker',
    async (code, make, line) => {
      // Prepare
      const body = await make();

      // Act
      const r = await api('POST', '/jobs?processor=json&fileName=bad.csv', {
        token: sakai,
        body,
        type: 'text/csv',
      });

      // Assess
      expect(r.status).toBe(422);
      expect(r.body.error?.code).toBe(code);
      expect(r.body.error?.message).toBeTruthy();
      if (line !== undefined) expect(r.body.error?.message).toContain(`line ${line}`);
      expect(r.body.state).toBe('REJECTED');
      const token = r.body.token;
      const status = await api('GET', `/jobs/${token}`, { token: sakai });
      expect(status.body).toMatchObject({ state: 'REJECTED', error: { code } });
      expect(status.body.download).toBeUndefined();
      expect(await rt.deps.queues.queueUrl(reportQueueName(rt.stage, token))).toBeUndefined();
      expect(workerLogs(token)).toEqual([]);
    },
  );
});

describe('Local API: direct upload limit', () => {
  it('answers a POST /jobs above the direct-upload limit with a 413 that names POST /uploads', async () => {
    // Prepare
    const limit = getStage('local').limits.directUploadMaxBytes;
    const row = '1,abcdefghijklmnopqrstuvwxyz\n';
    const body = Buffer.from('id,name\n' + row.repeat(Math.ceil(limit / row.length) + 1));
    const before = (await api<{ jobs: JobView[] }>('GET', '/jobs', { token: sakai })).body.jobs.length;

    // Act
    const r = await api('POST', '/jobs', { token: sakai, body, type: 'text/csv' });

    // Assess
    expect(body.length).toBeGreaterThan(limit);
    expect(r.status).toBe(413);
    expect(r.body.error?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(r.body.error?.message).toContain('POST /uploads');
    expect((await api<{ jobs: JobView[] }>('GET', '/jobs', { token: sakai })).body.jobs).toHaveLength(before);
  });

  it('answers a body above the API Gateway payload limit (10 MB) with a 413 that names POST /uploads', async () => {
    // Prepare: a connection of its own, so a broken one cannot disturb the other tests
    const agent = new http.Agent({ keepAlive: false });
    const body = Buffer.alloc(11 * 1024 * 1024, 0x61);

    // Act
    const r = await httpRequest(agent, 'POST', '/jobs', sakai, body);

    // Assess
    expect(r.status).toBe(413);
    expect((JSON.parse(r.text) as ErrorBody).error.message).toContain('POST /uploads');
  });

  it('keeps serving requests on the same keep-alive connection after a 413 for a body above 10 MB', async () => {
    // Prepare
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const big = Buffer.alloc(11 * 1024 * 1024, 0x61);

    // Act
    const refused = await httpRequest(agent, 'POST', '/jobs', sakai, big);
    const next = await httpRequest(agent, 'GET', '/health').catch((err: unknown) => err as Error);
    agent.destroy();

    // Assess
    expect(refused.status).toBe(413);
    expect(next).not.toBeInstanceOf(Error);
    expect((next as { status: number }).status).toBe(200);
  });
});

describe('Local API: tenant isolation', () => {
  it("answers 404 when site A asks for site B's job; B sees it", async () => {
    // Prepare
    const started = await api('POST', '/jobs?processor=json', {
      token: kawasaki,
      body: 'id,name\n1,川崎\n',
      type: 'text/csv',
    });
    const token = started.body.token;

    // Act
    const asSakai = await api('GET', `/jobs/${token}`, { token: sakai });
    const asKawasaki = await waitForEnd(token, kawasaki);
    const sakaiList = await api<{ jobs: JobView[] }>('GET', '/jobs', { token: sakai });

    // Assess
    expect(started.status).toBe(202);
    expect(asSakai.status).toBe(404);
    expect(asSakai.body.error?.code).toBe('NOT_FOUND');
    expect(JSON.stringify(asSakai.body)).not.toContain('川崎');
    expect(JSON.stringify(asSakai.body)).not.toContain('kawasaki');
    expect(asKawasaki).toMatchObject({
      site: 'kawasaki',
      state: 'SUCCEEDED',
      rows: { total: 1, succeeded: 1, failed: 0, rejected: 0 },
    });
    expect(sakaiList.body.jobs.map((j) => j.token)).not.toContain(token);
  });

  it('takes the site from the token only, never from the request', async () => {
    // Prepare
    const body = 'id,name\n1,a\n';
    const kawasakiJobs = (await rt.deps.jobs.list('kawasaki')).length;

    // Act
    const named = await api('POST', '/jobs?processor=json&site=kawasaki', {
      token: sakai,
      body,
      type: 'text/csv',
    });
    const namedInBody = await api('POST', '/uploads', {
      token: sakai,
      body: JSON.stringify({ site: 'kawasaki', fileName: 'a.csv' }),
      type: 'application/json',
    });
    const r = await api('POST', '/jobs?processor=json', { token: sakai, body, type: 'text/csv' });
    const presigned = await api<{ token: string; site: string }>('POST', '/uploads', {
      token: sakai,
      body: JSON.stringify({ fileName: 'a.csv' }),
      type: 'application/json',
    });

    // Assess: a request naming a site is refused (the schema knows no such option), and nothing reaches kawasaki
    expect([named.status, named.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
    expect([namedInBody.status, namedInBody.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
    expect(r.body.site).toBe('sakai');
    expect(presigned.body.site).toBe('sakai');
    expect(await rt.deps.jobs.get('kawasaki', presigned.body.token)).toBeUndefined();
    expect((await rt.deps.jobs.list('kawasaki')).length).toBe(kawasakiJobs);
    expect((await api('GET', `/jobs/${r.body.token}`, { token: kawasaki })).status).toBe(404);
  });

  it('refuses requests without a valid bearer token', async () => {
    // Prepare
    const path = '/jobs';

    // Act
    const none = await api('GET', path);
    const bogus = await api('GET', path, { token: 'rf_sakai_not-a-real-token' });

    // Assess
    expect(none.status).toBe(401);
    expect(bogus.status).toBe(401);
  });
});

describe('Local API: presigned upload route', () => {
  it('POST /uploads, then a presigned S3 POST, splits the file on the S3 event and finishes the job', async () => {
    // Prepare
    const csv = 'id,name\r\n1,山田\r\n2,鈴木\r\n';
    const created = await api<{
      token: string;
      upload: { url: string; fields: Record<string, string>; maxBytes: number };
    }>('POST', '/uploads', {
      token: sakai,
      body: JSON.stringify({ fileName: 'up.csv', processor: 'json' }),
      type: 'application/json',
    });
    const form = new FormData();
    for (const [k, v] of Object.entries(created.body.upload.fields)) form.append(k, v);
    form.append('file', new Blob([csv]), 'up.csv');

    // Act
    const posted = await fetch(created.body.upload.url, { method: 'POST', body: form });
    const view = await waitForEnd(created.body.token, sakai);

    // Assess
    expect(created.status).toBe(201);
    expect(created.body.upload.maxBytes).toBe(getStage('local').limits.presignedUploadMaxBytes);
    expect(posted.status).toBe(204);
    expect(view).toMatchObject({
      state: 'SUCCEEDED',
      fileName: 'up.csv',
      rows: { total: 2, succeeded: 2, failed: 0, rejected: 0 },
    });
    expect((await rt.deps.jobs.get('sakai', created.body.token))?.upload).toBe('presigned');
    const zip = await readZipText(Buffer.from(await (await fetch(view.download!.url)).arrayBuffer()));
    expect(JSON.parse(zip.get('rows/2.json')!)).toEqual({ id: '2', name: '鈴木' });
  });
});

describe('Post-deploy check: rowfleet smoke', () => {
  it('passes every documented step against a working API (here the local one)', async () => {
    // Act
    const steps = await smoke(rt.apiUrl, sakai, join(dir, 'smoke-out'));

    // Assess
    expect(steps.map((s) => [s.step, s.ok, s.ok ? '' : s.detail])).toEqual([
      ['GET /health without a token answers 200', true, ''],
      ['GET /jobs answers 401 without a token and 200 with it', true, ''],
      ['a job with one bad record ends PARTIAL', true, ''],
      ['the zip names the job and lists the bad record', true, ''],
    ]);
  });

  it('names the first failing step and stops there (a token the API does not know)', async () => {
    // Act
    const steps = await smoke(rt.apiUrl, 'rf_sakai_not-a-real-token', join(dir, 'smoke-out'));

    // Assess
    expect(steps.map((s) => s.ok)).toEqual([true, false]);
    expect(steps[1]!.detail).toMatch(/with the token: HTTP 401/);
  });
});
