/**
 * Start-up of a small job (issue 22): the README's first command, `npx rowfleet run samples/clients.csv --site
 * sakai` (10 rows), or with `--via node` the bin run directly (`node cli/rowfleet.mjs run …`, on the `node` first on
 * the PATH), with no runtime running (a fresh state
 * directory each time), from the command's spawn to the job's `receivedAt` as its view gives it (the `--json`
 * summary), so everything a user waits for before the job exists is in: npx, Node's start, the command's modules, the
 * background runtime and its emulators, the request. One run first, not counted: it builds what a first use builds
 * (the command bundle, the worker bundle) and warms the page cache, as any second command finds them.
 *
 *   npm run bench -- --scenario startup [--runs 3] [--dir DIR] [--via npx|node]   (the default scenario: npx)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The README's sample: 10 rows. */
const SAMPLE = join(ROOT, 'samples', 'clients.csv');

export interface StartupResult {
  /** Seconds from spawn to `receivedAt`, each measured run in order. */
  readonly runs: number[];
  /** Their median. */
  readonly seconds: number;
}

/** How the command is started: as the README says (`npx rowfleet`), or its bin run by `node` directly. */
export type Via = 'npx' | 'node';
const COMMAND: Record<Via, [string, string[]]> = {
  npx: ['npx', ['rowfleet']],
  node: ['node', [join(ROOT, 'cli', 'rowfleet.mjs')]],
};

/** One `npx rowfleet run … --json` in the repository, with a state directory of its own; its JSON summary. */
function runOnce(
  file: string,
  dir: string,
  via: Via,
): Promise<{ spawnedAt: number; summary: Record<string, unknown> }> {
  const stateDir = mkdtempSync(join(dir, 'state-'));
  const [command, first] = COMMAND[via];
  const args = [...first, 'run', file, '--site', 'sakai'];
  args.push('--state-dir', stateDir, '--out', join(dir, 'out'), '--json');
  return new Promise((resolve, reject) => {
    const spawnedAt = Date.now();
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      rmSync(stateDir, { recursive: true, force: true });
      const last = stdout.trimEnd().split('\n').at(-1) ?? '';
      try {
        const summary = JSON.parse(last) as Record<string, unknown>;
        if (code === 0 && summary.state === 'SUCCEEDED') return resolve({ spawnedAt, summary });
      } catch {
        // not a summary: reported below
      }
      reject(new Error(`rowfleet run exited ${code}: ${last}\n${stderr.slice(-2000)}`));
    });
  });
}

/** Measures the start-up `runs` times (after one run not counted); the work files go under `dir`. */
export async function measureStartup(
  runs: number,
  workDir: string,
  via: Via = 'npx',
): Promise<StartupResult> {
  const dir = mkdtempSync(join(workDir, 'startup-'));
  try {
    const file = SAMPLE;
    await runOnce(file, dir, via);
    const seconds: number[] = [];
    for (let i = 0; i < runs; i++) {
      const { spawnedAt, summary } = await runOnce(file, dir, via);
      const receivedAt = Date.parse(String(summary.receivedAt));
      if (Number.isNaN(receivedAt))
        throw new Error(`no receivedAt in the summary: ${JSON.stringify(summary)}`);
      seconds.push(+((receivedAt - spawnedAt) / 1000).toFixed(2));
    }
    const sorted = [...seconds].sort((a, b) => a - b);
    return { runs: seconds, seconds: sorted[Math.floor(sorted.length / 2)]! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// npm run bench -- --scenario startup
if (parseArgs({ options: { scenario: { type: 'string' } }, strict: false }).values.scenario === 'startup') {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      runs: { type: 'string', default: '3' },
      dir: { type: 'string' },
      via: { type: 'string', default: 'npx' },
    },
  });
  const via = values.via === 'node' ? 'node' : 'npx';
  const r = await measureStartup(Number(values.runs), values.dir ?? tmpdir(), via);
  const how = via === 'npx' ? 'npx rowfleet' : 'node cli/rowfleet.mjs';
  console.log(`
Rowfleet benchmark: start-up — ${how} run samples/clients.csv (10 rows), no runtime running, spawn → receivedAt
   runs (s)          ${r.runs.join(', ')} (load average ${loadavg()[0]!.toFixed(2)} at the end)
   median            ${r.seconds} s   target ≤ 1.5 s  ${r.seconds <= 1.5 ? 'ok' : 'MISSED'}
${JSON.stringify({ scenario: 'startup', via, startupSeconds: r.seconds, startupRuns: r.runs })}`);
}
