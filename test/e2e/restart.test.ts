/**
 * Restarts resume (issue 9): a job is killed (kill -9) in the middle — the `rowfleet run` that started it, or the
 * whole local runtime (its process, its emulator host and its workers at once) while it runs or finalizes — and
 * `rowfleet dev --state-dir S` afterwards finishes it by itself, every record exactly once. The acceptance run is
 * the same test with RESTART_RECORDS=200000 (it prints the figures).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../core/intake/operations.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { readOwner } from '../../local/ownership.ts';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { REPO_ROOT, rowfleet, rowfleetStarter, runArgs } from '../helpers/cli.ts';
import { checkZip, expectExactlyOnce } from '../helpers/jepsen.ts';
import { workerPids } from '../helpers/tasks.ts';
import { tempDirs } from '../helpers/temp.ts';
import { until } from '../helpers/wait.ts';

const RECORDS = Number(process.env.RESTART_RECORDS ?? 6000);
/** Slows the workers a little so a small job is still running when it is killed. */
const DELAY_MS = RECORDS >= 100_000 ? 0 : 1;

const newDir = tempDirs();
const start = rowfleetStarter();

/** The local API's authorization header of site sakai. */
async function auth(stateDir: string): Promise<Record<string, string>> {
  const tokens = JSON.parse(await readFile(join(stateDir, 'api-tokens.json'), 'utf8')) as Record<
    string,
    string
  >;
  return { authorization: `Bearer ${tokens.sakai}` };
}

/** The state dir's only job, through the API of the runtime that owns the state dir now (undefined meanwhile). */
async function theJob(stateDir: string): Promise<JobView | undefined> {
  const owner = readOwner(stateDir);
  if (!owner) return undefined;
  try {
    const res = await fetch(`${owner.apiUrl}/jobs`, { headers: await auth(stateDir) });
    const jobs = (await res.json()) as JobView[] | { jobs: JobView[] };
    const list = Array.isArray(jobs) ? jobs : jobs.jobs;
    return list[0];
  } catch {
    return undefined;
  }
}

/** Every process of the runtime at once: the runtime, its emulator host, its workers. */
async function killRuntime(stateDir: string): Promise<number[]> {
  const owner = readOwner(stateDir)!;
  const pids = [owner.pid, ...(owner.emulatorPid ? [owner.emulatorPid] : [])];
  pids.push(...workerPids(stateDir));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids;
}

async function scenario(kill: 'run-client' | 'runtime-running' | 'runtime-finalizing') {
  // Prepare: a job of RECORDS records started by `rowfleet run`
  const dir = await newDir(`rowfleet-restart-${kill}-`);
  const stateDir = join(dir, 'state');
  const file = join(dir, 'jobs.csv');
  await writeSampleCsv(file, RECORDS);
  const run = start(
    runArgs(file, { processor: 'json', workers: 2, delayMs: DELAY_MS, stateDir, out: join(dir, 'out') }),
  ).child;

  // Act: kill -9 at the chosen moment, then `rowfleet dev` on the same state dir
  const at = await until(
    `the moment to kill (${kill})`,
    120_000,
    async () => {
      const v = await theJob(stateDir);
      if (!v) return undefined;
      if (kill === 'runtime-finalizing') {
        const counted =
          v.progress.totalChunks !== undefined && v.progress.chunksDone >= v.progress.totalChunks;
        return v.state === 'FINALIZING' || counted ? v : undefined;
      }
      return v.state === 'RUNNING' && v.progress.done > 0 ? v : undefined;
    },
    kill === 'runtime-finalizing' ? 10 : 50,
  );
  run.kill('SIGKILL');
  if (kill !== 'run-client') await killRuntime(stateDir);
  await new Promise((r) => (run.exitCode === null ? run.once('exit', r) : r(undefined)));
  const t0 = Date.now();
  const { child: dev, out: devOutput } = start(['dev', '--state-dir', stateDir]);
  let last: JobView | undefined;
  const done = await until(
    'the job to finish after the restart',
    120_000,
    async () => {
      const v = await theJob(stateDir);
      last = v ?? last;
      return v && isTerminal(v.state) ? v : undefined;
    },
    200,
  ).catch(async (err: Error) => {
    // What a stuck job looked like, for the one reading the failure
    const owner = readOwner(stateDir);
    const detail = last
      ? await fetch(`${owner?.apiUrl}/jobs/${last.token}`, { headers: await auth(stateDir) })
      : undefined;
    throw new Error(
      `${err.message}; the job: ${detail ? await detail.text() : 'never seen'}; runtime: ${JSON.stringify(owner)}; ` +
        `dev said: ${devOutput.stdout.slice(-2000)}; dev's stderr: ${devOutput.stderr.slice(-2000)}; dev exit: ${dev.exitCode ?? dev.signalCode ?? 'running'}; runtime log: ${(await readFile(join(stateDir, 'logs', 'runtime.log'), 'utf8').catch(() => '')).slice(-4000)}`,
    );
  });
  const seconds = (Date.now() - t0) / 1000;
  const zip = Buffer.from(await (await fetch(done.download!.url)).arrayBuffer());
  // Ctrl-C once dev is up (a signal while Node still loads the CLI's modules ends it before any handler exists)
  await until(
    'rowfleet dev to be ready',
    60_000,
    async () => devOutput.stdout.includes('Rowfleet local runtime') || undefined,
    100,
  );
  dev.kill('SIGINT');
  await new Promise((r) => dev.once('exit', r));

  // Assess
  console.log(
    `restart (${kill}): killed at ${at.state} ${at.progress.done}/${at.progress.total ?? '?'} records ` +
      `(${at.progress.chunksDone}/${at.progress.totalChunks ?? '?'} chunks); rowfleet dev finished it in ` +
      `${seconds.toFixed(1)} s: ${done.state}, ${done.rows.succeeded}/${done.rows.total} records`,
  );
  expect(done.state).toBe('SUCCEEDED');
  expect(done.rows).toEqual({ total: RECORDS, succeeded: RECORDS, failed: 0, rejected: 0 });
  expectExactlyOnce(await checkZip(zip, RECORDS));
  expect(seconds).toBeLessThan(60);
  expect({ code: dev.exitCode, signal: dev.signalCode }).toEqual({ code: 0, signal: null });
  return { at, seconds };
}

describe('Scenario: kill -9 mid-job, then rowfleet dev on the same state dir', { timeout: 300_000 }, () => {
  it('finishes the job after the `rowfleet run` that started it was killed while it ran', async () => {
    await scenario('run-client');
  });

  it('finishes the job after the whole runtime (runtime, emulators, workers) was killed while it ran', async () => {
    await scenario('runtime-running');
  });

  it('finishes the job after the whole runtime was killed with every chunk counted (finalize asked or under way)', async () => {
    await scenario('runtime-finalizing');
  });

  it('attaches two `rowfleet run` at once and five `rowfleet mail send` at once to one runtime: every one succeeds', async () => {
    // Prepare
    const dir = await newDir('rowfleet-shared-');
    const stateDir = join(dir, 'state');
    const sample = join(REPO_ROOT, 'samples', 'clients.csv');

    // Act
    const runs = await Promise.all(
      [1, 2].map(() => rowfleet(runArgs(sample, { stateDir, out: join(dir, 'out') }))),
    );
    const mails = await Promise.all(
      [1, 2, 3, 4, 5].map(() =>
        rowfleet(['mail', 'send', '--site', 'kawasaki', '--json', '--state-dir', stateDir]),
      ),
    );

    // Assess
    for (const r of [...runs, ...mails]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const last = (s: string) =>
      JSON.parse(s.trimEnd().split('\n').pop()!) as { state?: string; status?: string };
    expect(runs.map((r) => last(r.stdout).state)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(mails.map((r) => last(r.stdout).status).sort()).toEqual([
      'sent',
      'skipped',
      'skipped',
      'skipped',
      'skipped',
    ]);
    expect(readOwner(stateDir)).toBeUndefined();
  });
});
