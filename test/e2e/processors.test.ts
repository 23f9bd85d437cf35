/**
 * Users' processors end to end (issue 8): `processors/webhook.ts` is one file, registered nowhere. The CLI lists
 * it, the local API accepts it and refuses unknown names, and the local workers — the bundled worker, as the
 * image runs it — run it: each row POSTed once, with its idempotency key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStage } from '../../config/index.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { runJob } from '../../cli/run-job.ts';
import { rowfleet } from '../helpers/cli.ts';
import { parseErrorsCsv } from '../helpers/jepsen.ts';
import { readZipText } from '../helpers/zip.ts';

let dir: string;
let rt: LocalRuntime;
let server: http.Server;
/** What the webhook server received: idempotency key → bodies. */
const received = new Map<string, string[]>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-processors-'));
  // A webhook endpoint: answers 429 once for record 3 (the processor tries again), 400 for record 5.
  let busy = true;
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const key = String(req.headers['idempotency-key']);
      const id = (JSON.parse(body) as { id: string }).id;
      if (id === '3' && busy) {
        busy = false;
        res.writeHead(429, { 'retry-after': '0' }).end('slow down');
        return;
      }
      if (id === '5') return void res.writeHead(400).end('no such customer');
      received.set(key, [...(received.get(key) ?? []), body]);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: id }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // The workers are processes of this runtime: they inherit the environment.
  process.env.ROWFLEET_WEBHOOK_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
}, 60_000);

afterAll(async () => {
  await rt?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  delete process.env.ROWFLEET_WEBHOOK_URL;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function post(
  query: string,
  token: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${rt.apiUrl}/jobs?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
    body: 'id,email\n1,a@example.com\n',
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("Users' processors: one file in processors/", () => {
  it("lists built-in and users' processors with what they declare (rowfleet processors --json)", async () => {
    // Act
    const r = await rowfleet(['processors', '--json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>[];
    const byName = new Map(listed.map((p) => [p.name, p]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['json', 'report', 'mail', 'webhook']));
    expect(byName.get('webhook')).toMatchObject({
      source: 'processors/webhook.ts',
      concurrency: 32,
      sideEffects: true,
      rateLimit: { key: 'webhook', perSecond: 50 },
    });
    expect(byName.get('mail')).toMatchObject({
      source: 'built-in',
      sideEffects: true,
      rateLimit: { key: 'ses', perSecond: getStage('local').mail.ratePerSecond },
    });
    expect(byName.get('json')).toMatchObject({ source: 'built-in', sideEffects: false, rateLimit: null });
  });

  it('has the API refuse an unknown processor, a template the site lacks and a concurrency above the maximum', async () => {
    // Prepare
    const token = await rt.tokenFor('kawasaki');

    // Act
    const unknown = await post('processor=nope', token);
    const template = await post('processor=mail&template=welcome', token);
    const wide = await post('processor=json&concurrency=100000', token);

    // Assess
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'UNKNOWN_PROCESSOR' });
    expect(template.status).toBe(400);
    expect(template.body.error).toMatchObject({ code: 'UNKNOWN_TEMPLATE' });
    expect(wide.status).toBe(400);
    expect(wide.body.error).toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it("runs a user's processor in the bundled local workers: each row sent once, refusals in errors.csv", async () => {
    // Prepare
    const file = join(dir, 'hooks.csv');
    writeFileSync(
      file,
      'id,email\n' + Array.from({ length: 40 }, (_, i) => `${i + 1},u${i + 1}@example.com`).join('\n'),
    );

    // Act
    const summary = await runJob({
      apiUrl: rt.apiUrl,
      apiToken: await rt.tokenFor('sakai'),
      file,
      processor: 'webhook',
      workers: 2,
      outDir: join(dir, 'out'),
      directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
      progress: false,
    });

    // Assess
    expect(summary.state).toBe('PARTIAL');
    expect(summary.rows).toEqual({ total: 40, succeeded: 39, failed: 1, rejected: 0 });
    const zip = await readZipText(summary.zip!);
    const errors = parseErrorsCsv(zip.get('errors.csv')!);
    expect(errors.map((e) => [e.n, e.code])).toEqual([[5, 'WEBHOOK_REFUSED']]);
    const mine = [...received.entries()].filter(([k]) => k.includes(summary.token));
    expect(mine).toHaveLength(39);
    expect(mine.every(([, bodies]) => bodies.length === 1)).toBe(true);
    expect(mine.map(([k]) => k).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1)
        .filter((n) => n !== 5)
        .map((n) => `sakai#${summary.token}#${n}`)
        .sort(),
    );
    expect(JSON.parse(zip.get('webhooks/3.json')!)).toEqual({ status: 200, answer: '{"ok":"3"}' });
  }, 90_000);
});
