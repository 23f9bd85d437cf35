/**
 * The stage-wide worker budget, locally (issue 13): with a budget of 4 workers, a large job of one site and then
 * small jobs of two other sites. Never more than 4 worker processes are alive at once; the large job gives up
 * workers to the small ones (fair share by site) and gets them back; every job ends with every record exactly
 * once; each small job ends soon after its upload. The acceptance run (a 200,000-record job, ten small jobs) is
 * this test with BUDGET_RECORDS=200000 BUDGET_SMALL_JOBS=10; it prints the figures.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getStage } from '../../config/index.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { writeSampleCsv } from '../../scripts/gen-data.ts';
import { runJob, type RunSummary } from '../../scripts/run-job.ts';
import { checkZip, expectExactlyOnce } from '../helpers/jepsen.ts';

const BUDGET = 4;
const LARGE = Number(process.env.BUDGET_RECORDS ?? 12_000);
const SMALL_JOBS = Number(process.env.BUDGET_SMALL_JOBS ?? 6);
const SMALL = 200;

vi.hoisted(() => {
  // The runtime in this process, and the worker processes it starts, take this budget (core/deps.ts).
  process.env.ROWFLEET_MAX_WORKERS = '4';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

let dir = '';
let rt: LocalRuntime;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-budget-'));
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
});
afterAll(async () => {
  await rt?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Worker processes alive now, from the local launcher's task files. */
function liveWorkers(stateDir: string): number {
  let n = 0;
  const tasks = join(stateDir, 'tasks');
  let tokens: string[];
  try {
    tokens = readdirSync(tasks);
  } catch {
    return 0;
  }
  for (const token of tokens) {
    let pids: string[];
    try {
      pids = readdirSync(join(tasks, token));
    } catch {
      continue;
    }
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 0);
        n++;
      } catch {
        // gone
      }
    }
  }
  return n;
}

describe('Scenario: the worker budget, locally', () => {
  it(`never runs more than ${BUDGET} workers; small jobs of other sites get theirs while a large job runs`, async () => {
    // Prepare
    const large = join(dir, 'large.csv');
    const small = join(dir, 'small.csv');
    await writeSampleCsv(large, LARGE);
    await writeSampleCsv(small, SMALL);
    const run = async (site: string, file: string, request: Record<string, number>) => {
      const t0 = Date.now();
      const summary = await runJob({
        apiUrl: rt.apiUrl,
        apiToken: await rt.tokenFor(site),
        file,
        processor: 'json',
        simulateDelayMs: 10,
        request,
        outDir: join(dir, 'out'),
        directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
        progress: false,
      });
      return { summary, seconds: (Date.now() - t0) / 1000 };
    };
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, liveWorkers(join(dir, 'state')))), 100);

    // Act: the large job takes the whole budget; once it runs, the small jobs of two other sites arrive
    const largeRun = run('sakai', large, { workers: BUDGET, concurrency: 4 });
    for (let i = 0; i < 200 && liveWorkers(join(dir, 'state')) < BUDGET; i++)
      await new Promise((r) => setTimeout(r, 100));
    const smallRuns = await Promise.all(
      Array.from({ length: SMALL_JOBS }, (_, i) =>
        run(i % 2 ? 'kawasaki' : 'kashima', small, { concurrency: 4 }),
      ),
    );
    const largeDone = await largeRun;
    clearInterval(sampler);

    // Assess
    const smallSeconds = smallRuns.map((r) => r.seconds).sort((a, b) => a - b);
    const p95 = smallSeconds[Math.ceil(0.95 * smallSeconds.length) - 1]!;
    process.stderr.write(
      `budget ${BUDGET}: most workers alive ${most}; large job ${LARGE} records in ${largeDone.seconds.toFixed(1)} s; ` +
        `${SMALL_JOBS} small jobs in ${smallSeconds.map((s) => s.toFixed(1)).join(', ')} s (p95 ${p95.toFixed(1)} s)\n`,
    );
    expect(most).toBeLessThanOrEqual(BUDGET);
    expect(most).toBe(BUDGET);
    for (const { summary } of [largeDone, ...smallRuns] as { summary: RunSummary }[]) {
      expect(summary.state).toBe('SUCCEEDED');
      expectExactlyOnce(await checkZip(summary.zip!, summary.rows.total), summary.token);
    }
    expect(largeDone.summary.rows.total).toBe(LARGE);
    expect(p95).toBeLessThanOrEqual(20);
  });
});
