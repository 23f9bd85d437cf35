/**
 * A broken processor breaks only the jobs that name it (issue 19, point 7). A processors folder
 * (ROWFLEET_PROCESSORS_DIR) holds a good processor and broken ones: a syntax error, a throw at import, a
 * `process.exit` at import, and two that load in the API's inspection but not in a worker (a throw, an exit). The good one runs its
 * jobs; `rowfleet processors` flags each broken file with its error; a request naming one gets PROCESSOR_BROKEN
 * naming the file; a worker that cannot load its job's processor fails the job with that code; the runtime (this
 * process: its functions run in it) survives all of it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStage } from '../../config/index.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { runJob } from '../../cli/run-job.ts';
import { rowfleet } from '../helpers/cli.ts';
import { parseErrorsCsv } from '../helpers/jepsen.ts';
import { readZipText } from '../helpers/zip.ts';

const PROCESSORS: Record<string, string> = {
  good: `export default {
  name: 'good',
  description: 'good/<n>.txt: the record joined',
  concurrency: 4,
  costMs: 1,
  process(row: { n: number; fields: readonly string[] }) {
    return [{ name: \`good/\${row.n}.txt\`, data: row.fields.join('|') }];
  },
};
`,
  syntax: `export default {
  name: 'syntax',
  description: 'a comma missing'
  process() { return []; },
};
`,
  throws: `throw new Error('no settings for throws');
export default { name: 'throws', description: 'x', process: () => [] };
`,
  exits: `process.exit(3);
export default { name: 'exits', description: 'x', process: () => [] };
`,
  // Loads where the API inspects it, fails where a worker imports it (a worker has JOB_TOKEN).
  'worker-only': `if (process.env.JOB_TOKEN) throw new Error('cannot start in a worker');
export default { name: 'worker-only', description: 'x', process: () => [] };
`,
  'worker-exits': `if (process.env.JOB_TOKEN) process.exit(4);
export default { name: 'worker-exits', description: 'x', process: () => [] };
`,
};

let dir: string;
let rt: LocalRuntime;
const saved = process.env.ROWFLEET_PROCESSORS_DIR;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-broken-processors-'));
  const processors = join(dir, 'processors');
  mkdirSync(processors);
  for (const [name, text] of Object.entries(PROCESSORS)) writeFileSync(join(processors, `${name}.ts`), text);
  // Read by the API, the CLI (a child of this process) and the local launcher.
  process.env.ROWFLEET_PROCESSORS_DIR = processors;
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
}, 60_000);

afterAll(async () => {
  await rt?.stop();
  if (saved === undefined) delete process.env.ROWFLEET_PROCESSORS_DIR;
  else process.env.ROWFLEET_PROCESSORS_DIR = saved;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function post(
  processor: string,
  query = '',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${rt.apiUrl}/jobs?${query}processor=${processor}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await rt.tokenFor('kawasaki')}`, 'content-type': 'text/csv' },
    body: 'id,email\n1,a@example.com\n',
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function run(processor: string, rows: number) {
  const file = join(dir, `${processor}.csv`);
  writeFileSync(file, 'id,name\n' + Array.from({ length: rows }, (_, i) => `${i + 1},n${i + 1}`).join('\n'));
  return runJob({
    apiUrl: rt.apiUrl,
    apiToken: await rt.tokenFor('sakai'),
    file,
    processor,
    workers: 1,
    outDir: join(dir, `out-${processor}`),
    directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
    progress: false,
    stallSeconds: 60,
  });
}

describe('A broken processor breaks only the jobs that name it', () => {
  it('lists the good processors and flags each broken file with its error (rowfleet processors --json)', async () => {
    // Act
    const r = await rowfleet(['processors', '--json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>[];
    const byName = new Map(listed.map((p) => [p.name, p]));
    expect(byName.get('json')).toMatchObject({ source: 'built-in' });
    expect(byName.get('good')).toMatchObject({ source: 'processors/good.ts', concurrency: 4, costMs: 1 });
    expect(byName.get('good')).not.toHaveProperty('broken');
    expect(byName.get('worker-only')).not.toHaveProperty('broken');
    expect(byName.get('syntax')).toMatchObject({
      source: 'processors/syntax.ts',
      broken: true,
      error: expect.stringMatching(/syntax\.ts:4:\d+: .*Expected/),
    });
    expect(byName.get('throws')).toMatchObject({ broken: true, error: 'no settings for throws' });
    expect(byName.get('exits')).toMatchObject({
      broken: true,
      error: expect.stringContaining('process.exit(3)'),
    });
    expect(r.stderr).toContain('3 processor file(s) broken');
  }, 90_000);

  it('refuses a request naming a broken processor with PROCESSOR_BROKEN naming the file, and keeps running', async () => {
    // Act
    const answers = {
      syntax: await post('syntax'),
      throws: await post('throws'),
      exits: await post('exits'),
    };
    const after = await post('good');

    // Assess
    for (const [name, a] of Object.entries(answers)) {
      expect(a.status, name).toBe(503);
      expect(a.body.error, name).toMatchObject({
        code: 'PROCESSOR_BROKEN',
        message: expect.stringContaining(`processors/${name}.ts is broken: `),
      });
    }
    expect((answers.throws.body.error as { message: string }).message).toContain('no settings for throws');
    expect((answers.exits.body.error as { message: string }).message).toContain('process.exit(3)');
    expect(after.status).toBe(202);
  }, 90_000);

  it("answers a check as POST /jobs: 503 for a broken processor; a user's good one shows no preview, never run", async () => {
    // Act
    const broken = await post('exits', 'check=true&');
    const good = await post('good', 'check=true&');

    // Assess
    expect(broken.status).toBe(503);
    expect(broken.body.error).toMatchObject({ code: 'PROCESSOR_BROKEN' });
    expect(good.status).toBe(200);
    expect(good.body).toMatchObject({
      check: true,
      processor: 'good',
      ok: true,
      records: 1,
      samples: [{ record: 1, line: 2, output: { kind: 'none' } }],
    });
  }, 90_000);

  it("runs the good processor's jobs in the local workers", async () => {
    // Act
    const summary = await run('good', 30);

    // Assess
    expect(summary.state).toBe('SUCCEEDED');
    expect(summary.rows).toEqual({ total: 30, succeeded: 30, failed: 0, rejected: 0 });
    const zip = await readZipText(summary.zip!);
    expect(zip.get('good/7.txt')).toBe('7|n7');
  }, 90_000);

  it("fails a job whose processor a worker cannot load, with PROCESSOR_BROKEN in the job's view and every record listed", async () => {
    // Act
    const summary = await run('worker-only', 12);

    // Assess
    expect(summary.state).toBe('FAILED');
    expect(summary.error).toMatchObject({
      code: 'PROCESSOR_BROKEN',
      message: expect.stringContaining('processors/worker-only.ts is broken: cannot start in a worker'),
    });
    expect(summary.rows).toEqual({ total: 12, succeeded: 0, failed: 12, rejected: 0 });
    const errors = parseErrorsCsv((await readZipText(summary.zip!)).get('errors.csv')!);
    expect(errors.map((e) => e.code)).toEqual(Array(12).fill('PROCESSOR_BROKEN'));
  }, 90_000);

  it('fails the job of a processor that calls process.exit in a worker, instead of losing the worker', async () => {
    // Act
    const summary = await run('worker-exits', 5);

    // Assess
    expect(summary.state).toBe('FAILED');
    expect(summary.error).toMatchObject({
      code: 'PROCESSOR_BROKEN',
      message: expect.stringContaining(
        'processors/worker-exits.ts is broken: calls process.exit(4) while loading',
      ),
    });
    expect(summary.rows).toEqual({ total: 5, succeeded: 0, failed: 5, rejected: 0 });
  }, 90_000);
});
