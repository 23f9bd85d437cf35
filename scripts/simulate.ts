/**
 * `npm run simulate`: a day of many jobs from many sites against a stage-wide worker budget, simulated
 * (discrete events, a simulated clock, a seeded generator; no processes, no AWS) under three policies:
 *
 * - **ours**: the real granting code — core/budget/policy.ts (targets, grants) through core/budget/plan.ts's
 *   pure decisions (`planPass`, `mustShed`, `planReconcile`, `demandOfJob`), the same functions the
 *   DynamoDB store runs. Only the storage is an in-memory stand-in: one budget state and one demand map,
 *   changed in one step where the store does one conditional write (no concurrent granters here; their
 *   safety is what test/integration/core/budget/store.test.ts checks on dynalite). A pass runs where production runs
 *   one: after a job's split, after a worker leaves or a job ends, and on each reaper pass (which also
 *   refreshes every job's records and chunks left).
 * - **today**: no budget: every job launches `workerCount()` workers at once when its split ends (the real
 *   function from core/split/worker-count.ts). The account runs at most `--budget` tasks (the Fargate quota); a
 *   launch past it fails, and a job left with no worker waits for the reaper (every 300 s, after its 180 s
 *   grace), which launches min(its workers, chunks left) again, as core/reaper/reaper.ts does.
 * - **fifo**: jobs take workers in arrival order up to the budget; nothing is taken back.
 *
 * Simulated: the launcher (a task holds its place from its launch and starts working 30-60 s later, as
 * Fargate tasks do), the worker (takes up to 2 chunks per receive, needs `--record-ms` per record, an empty
 * long poll lasts 20 s; today and fifo workers stay until the job ends or 160 s idle, as core/work/worker.ts
 * does; ours also leave between receives when `mustShed` says so), the split (1 s + 150,000 records/s;
 * chunks as core/split/split.ts sizes them), the finalize (stops the job's workers when the last chunk is
 * counted), and the clock.
 *
 * The pieces: scripts/simulate/workload.ts (the day's uploads), loop.ts (the events and what the launcher,
 * workers, split and finalize do), policies.ts (ours, today, fifo), metrics.ts (what a day is judged by).
 *
 * Options: --seed N (13), --jobs N (1200), --sites N (50), --budget N (200), --record-ms MS (200),
 * --max-workers-per-job N (100), --records-per-worker N (1000), --chunk-max-records N (100), --alpha A (0.4),
 * --json.
 */
import { parseArgs } from 'node:util';
import { simulate } from './simulate/loop.ts';
import {
  CHUNKS_PER_RECEIVE,
  LARGE,
  SMALL,
  START_DELAY_S,
  WINDOW_S,
  type SimParams,
} from './simulate/model.ts';
import { SIZE, workload } from './simulate/workload.ts';

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: '13' },
    jobs: { type: 'string', default: '1200' },
    sites: { type: 'string', default: '50' },
    budget: { type: 'string', default: '200' },
    'record-ms': { type: 'string', default: '200' },
    'max-workers-per-job': { type: 'string', default: '100' },
    'records-per-worker': { type: 'string', default: '1000' },
    'chunk-max-records': { type: 'string', default: '100' },
    alpha: { type: 'string', default: '0.4' },
    json: { type: 'boolean', default: false },
  },
});

const P: SimParams = {
  seed: Number(args.seed),
  jobs: Number(args.jobs),
  sites: Number(args.sites),
  budget: Number(args.budget),
  recordMs: Number(args['record-ms']),
  limits: {
    maxWorkersPerJob: Number(args['max-workers-per-job']),
    recordsPerWorker: Number(args['records-per-worker']),
  },
  chunkMaxRecords: Number(args['chunk-max-records']),
};

const started = process.hrtime.bigint();
const uploads = workload({ ...P, alpha: Number(args.alpha) });
const results = (['ours', 'today', 'fifo'] as const).map((p) => simulate(p, uploads, P));
const ms = Number(process.hrtime.bigint() - started) / 1e6;

if (args.json) {
  console.log(JSON.stringify({ params: P, results }));
} else {
  const records = uploads.map((u) => u.records);
  const count = (lo: number, hi: number) => records.filter((n) => n >= lo && n < hi).length;
  const sitesUsed = new Set(uploads.map((u) => u.site)).size;
  const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
  const hhmm = (s: number) =>
    `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
  console.log(
    `Rowfleet simulation (seed ${P.seed}): ${uploads.length} jobs from ${sitesUsed} sites, budget ${P.budget} workers`,
  );
  console.log(
    `  sizes (bounded Pareto, min ${SIZE.min}, alpha ${args.alpha}, max ${SIZE.max.toLocaleString('en')}): ` +
      `<1k ${count(0, 1e3)}, 1k-100k ${count(1e3, 1e5)}, 100k-1M ${count(1e5, 1e6)}, ≥1M ${count(1e6, Infinity)}; ` +
      `${records.reduce((a, b) => a + b, 0).toLocaleString('en')} records, largest ${Math.max(...records).toLocaleString('en')}`,
  );
  console.log(
    `  ${P.recordMs} ms per record per worker; maxWorkersPerJob ${P.limits.maxWorkersPerJob}, recordsPerWorker ${P.limits.recordsPerWorker}, ` +
      `chunks ≤ ${P.chunkMaxRecords} records, ${CHUNKS_PER_RECEIVE} per receive; tasks start ${START_DELAY_S[0]}-${START_DELAY_S[1]} s after launch`,
  );
  console.log('');
  console.log(
    '| policy | budget in use while demand > budget | workers busy (same time) | small-job wait p50 / p99 (s) | small-job p99 to a running worker (s) | Jain (sites) | most tasks requested at once | RunTask refusals | left: share shrank / chunks ran out | demand > budget (h) | last job ends |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const x of results) {
    console.log(
      `| ${x.policy} | ${fmt(100 * x.utilisation, 1)} % | ${fmt(100 * x.busy, 1)} % | ${fmt(x.smallWaitP50, 1)} / ${fmt(x.smallWaitP99, 1)} | ${fmt(x.smallRunningP99, 1)} | ${fmt(x.jain, 3)} | ${x.peakRequested} | ${x.launchFailures} | ${x.shedForShare} / ${x.shedForChunks} | ${fmt(x.contendedHours, 2)} | ${hhmm(x.lastJobEnd)} |`,
    );
  }
  const ours = results.find((x) => x.policy === 'ours')!;
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  console.log('');
  console.log(
    `targets (ours): budget in use ≥ 90 % while demand > budget: ${mark(ours.utilisation >= 0.9)}; ` +
      `small-job p99 wait ≤ 60 s: ${mark(ours.smallWaitP99 <= 60)}; Jain ≥ 0.9: ${mark(ours.jain >= 0.9)}; ` +
      `never more tasks requested than the budget: ${mark(ours.peakRequested <= P.budget)}`,
  );
  console.log('');
  console.log(
    `small jobs: < ${SMALL} records whose split ended while a job of ≥ ${LARGE.toLocaleString('en')} records had workers ` +
      `(${results.map((x) => `${x.policy} ${x.smallJobs}`).join(', ')}); wait = split done → first worker launched. ` +
      `Jain: per ${WINDOW_S}-s window of demand > budget, each site's worker-seconds ÷ its max-min fair share of the ` +
      `budget (water-filling over the sites' demand), averaged over the windows by time. Simulated in ${fmt(ms)} ms.`,
  );
}
