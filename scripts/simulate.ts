/**
 * `npm run simulate`: a day of many jobs from many sites against a stage-wide worker budget, simulated
 * (discrete events, a simulated clock, a seeded generator; no processes, no AWS) under three policies:
 *
 * - **ours**: the real granting code — core/budget/policy.ts (targets, grants) through core/budget/store.ts's
 *   pure decisions (`planPass`, `mustShed`, `planReconcile`, `demandOfJob`), the same functions the
 *   DynamoDB store runs. Only the storage is an in-memory stand-in: one budget state and one demand map,
 *   changed in one step where the store does one conditional write (no concurrent granters here; their
 *   safety is what test/integration/core/budget/store.test.ts checks on dynalite). A pass runs where production runs
 *   one: after a job's split, after a worker leaves or a job ends, and on each reaper pass (which also
 *   refreshes every job's records and chunks left).
 * - **today**: no budget: every job launches `workerCount()` workers at once when its split ends (the real
 *   function from core/aws/task-launcher.ts). The account runs at most `--budget` tasks (the Fargate quota); a
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
 * Options: --seed N (13), --jobs N (1200), --sites N (50), --budget N (200), --record-ms MS (20),
 * --max-workers-per-job N (50), --records-per-worker N (10000), --chunk-max-records N (1000), --json.
 */
import { parseArgs } from 'node:util';
import { jobKey, type BudgetPolicy } from '../core/budget/policy.ts';
import {
  demandOfJob,
  EMPTY_BUDGET,
  mustShed,
  planPass,
  planReconcile,
  type BudgetState,
  type Demand,
  type Holding,
} from '../core/budget/plan.ts';
import { workerCount } from '../core/split/worker-count.ts';
import type { Job } from '../core/jobs/store.ts';
import type { TaskInfo } from '../core/aws/task-launcher.ts';

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

const P = {
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

// Fixed model constants (stated in the header above and printed with the table).
const START_DELAY_S: [number, number] = [30, 60];
const CHUNKS_PER_RECEIVE = 2;
const CHUNKS_PER_WORKER = 4;
const LONG_POLL_S = 20;
const IDLE_EXIT_S = 160; // visibility 120 s + 2 long polls: core/work/worker.ts's "waited out"
const REAPER_S = 300;
const REAPER_GRACE_S = 180;
const SPLIT_RECORDS_PER_S = 150_000;
const SMALL = 1000; // "small job": fewer records
const LARGE = 100_000; // "large job": at least this many records
const WINDOW_S = 300; // fairness is measured per window of contended time

// Workload: sizes from a bounded Pareto (heavy tail), sites by a Zipf-like popularity, a working day.
const SIZE = { min: 10, alpha: Number(args.alpha), max: 5_000_000 };

/** mulberry32: a small seeded generator, so a seed replays the same day. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Upload {
  readonly site: string;
  readonly token: string;
  readonly records: number;
  /** Seconds after 00:00. */
  readonly arrival: number;
}

function workload(seed: number): Upload[] {
  const r = rng(seed);
  const popularity = Array.from({ length: P.sites }, (_, i) => 1 / (i + 1) ** 0.7);
  const total = popularity.reduce((a, b) => a + b, 0);
  const pickSite = () => {
    let u = r() * total;
    for (let i = 0; i < popularity.length; i++) {
      u -= popularity[i]!;
      if (u <= 0) return `site-${String(i + 1).padStart(2, '0')}`;
    }
    return `site-${String(P.sites).padStart(2, '0')}`;
  };
  const size = () => {
    const { min, alpha, max } = SIZE;
    const u = r();
    const x = min / (1 - u * (1 - (min / max) ** alpha)) ** (1 / alpha);
    return Math.max(1, Math.round(x));
  };
  const arrival = () => {
    const u = r();
    // 40 % in a morning rush (08:45-09:45), 45 % over the working day (09:45-18:00), 15 % any time.
    if (u < 0.4) return 8.75 * 3600 + r() * 3600;
    if (u < 0.85) return 9.75 * 3600 + r() * 8.25 * 3600;
    return r() * 24 * 3600;
  };
  const out: Upload[] = [];
  for (let i = 0; i < P.jobs; i++) {
    out.push({
      site: pickSite(),
      token: `job-${String(i).padStart(5, '0')}`,
      records: size(),
      arrival: arrival(),
    });
  }
  return out.sort((a, b) => a.arrival - b.arrival || a.token.localeCompare(b.token));
}

type PolicyName = 'ours' | 'today' | 'fifo';

interface SimJob {
  readonly u: Upload;
  readonly key: string;
  readonly ready: number;
  readonly workers: number;
  readonly chunkRecords: number;
  readonly totalChunks: number;
  handed: number;
  done: number;
  finished?: number;
  firstWorkerAt?: number;
  firstRunningAt?: number;
  duringLarge: boolean;
  readonly live: Set<SimWorker>;
}

interface SimWorker {
  readonly job: SimJob;
  alive: boolean;
  busy: boolean;
  idleSince?: number;
  /** Its place was already given back (it left through the shed rule). */
  released: boolean;
}

type SimEvent =
  | { t: number; seq: number; kind: 'ready'; job: SimJob }
  | { t: number; seq: number; kind: 'start' | 'poll'; w: SimWorker }
  | { t: number; seq: number; kind: 'batch'; w: SimWorker; chunks: number }
  | { t: number; seq: number; kind: 'reaper' };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** A binary heap of events by time (then insertion order: deterministic). */
class Events {
  private readonly a: SimEvent[] = [];
  private seq = 0;

  push(e: DistributiveOmit<SimEvent, 'seq'>): void {
    const ev = { ...e, seq: this.seq++ } as SimEvent;
    const a = this.a;
    a.push(ev);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!earlier(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): SimEvent | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && earlier(a[l]!, a[m]!)) m = l;
        if (r < a.length && earlier(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

const earlier = (x: SimEvent, y: SimEvent) => x.t < y.t || (x.t === y.t && x.seq < y.seq);

/** Max-min fair shares of a budget among demands (continuous water-filling, equal weights). */
function waterFill(demand: Map<string, number>, budget: number): Map<string, number> {
  const out = new Map<string, number>();
  const sorted = [...demand].sort((a, b) => a[1] - b[1]);
  let left = budget;
  for (let i = 0; i < sorted.length; i++) {
    const [site, d] = sorted[i]!;
    const share = left / (sorted.length - i);
    const give = Math.min(d, share);
    out.set(site, give);
    left -= give;
  }
  return out;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

interface Result {
  readonly policy: PolicyName;
  /** Places held (tasks starting or running) ÷ budget, over the time demand exceeded the budget. */
  readonly utilisation: number;
  /** Workers processing chunks ÷ budget, same time. */
  readonly busy: number;
  readonly contendedHours: number;
  readonly smallJobs: number;
  readonly smallWaitP50: number;
  readonly smallWaitP99: number;
  readonly smallRunningP99: number;
  readonly jain: number;
  readonly peakRequested: number;
  readonly launchFailures: number;
  /** Workers told to leave because their job's share shrank / because their job had fewer chunks left. */
  readonly shedForShare: number;
  readonly shedForChunks: number;
  readonly lastJobEnd: number;
}

function simulate(policyName: PolicyName, uploads: readonly Upload[]): Result {
  const r = rng(P.seed * 7919 + 1);
  const B = P.budget;
  const policy: BudgetPolicy = { maxWorkers: B };
  const events = new Events();
  const active = new Set<SimJob>();
  const aliveBySite = new Map<string, number>();
  let now = 0;
  let alive = 0;
  let busy = 0;
  let launchFailures = 0;
  let shedForShare = 0;
  let shedForChunks = 0;
  let peakRequested = 0;
  let unfinished = uploads.length;
  // Ours: the in-memory stand-in for the budget item and the demand items.
  let state: BudgetState = EMPTY_BUDGET;
  const demand = new Map<string, Demand>();

  // Metrics, integrated between events.
  let last = 0;
  let contended = 0;
  let heldInt = 0;
  let busyInt = 0;
  const windows = new Map<number, { t: number; held: Map<string, number>; fair: Map<string, number> }>();

  const jobs: SimJob[] = uploads.map((u) => {
    const workers = workerCount(u.records, P.limits);
    const target = Math.max(1, Math.ceil(u.records / Math.max(1, workers * CHUNKS_PER_WORKER)));
    const chunkRecords = Math.min(P.chunkMaxRecords, target);
    return {
      u,
      key: jobKey(u.site, u.token),
      ready: u.arrival + 1 + u.records / SPLIT_RECORDS_PER_S,
      workers,
      chunkRecords,
      totalChunks: Math.ceil(u.records / chunkRecords),
      handed: 0,
      done: 0,
      duringLarge: false,
      live: new Set(),
    };
  });
  for (const job of jobs) events.push({ t: job.ready, kind: 'ready', job });
  events.push({ t: REAPER_S, kind: 'reaper' });

  const chunkSize = (job: SimJob, i: number) =>
    Math.min(job.chunkRecords, job.u.records - i * job.chunkRecords);
  const usableOf = (job: SimJob) => Math.min(job.workers, job.totalChunks - job.done);

  const integrate = (t: number) => {
    const dt = t - last;
    if (dt <= 0) return;
    const siteDemand = new Map<string, number>();
    let total = 0;
    for (const job of active) {
      const d = usableOf(job);
      total += d;
      if (d > 0) siteDemand.set(job.u.site, (siteDemand.get(job.u.site) ?? 0) + d);
    }
    if (total > B) {
      contended += dt;
      heldInt += alive * dt;
      busyInt += busy * dt;
      const w = Math.floor(last / WINDOW_S);
      const win = windows.get(w) ?? { t: 0, held: new Map(), fair: new Map() };
      windows.set(w, win);
      win.t += dt;
      for (const [site, f] of waterFill(siteDemand, B)) {
        win.fair.set(site, (win.fair.get(site) ?? 0) + f * dt);
        win.held.set(site, (win.held.get(site) ?? 0) + (aliveBySite.get(site) ?? 0) * dt);
      }
    }
    last = t;
  };

  const launch = (job: SimJob, count: number) => {
    let failed = 0;
    for (let i = 0; i < count; i++) {
      if (alive >= B) {
        // Only today's policy ever gets here: the account's quota refuses the task.
        failed++;
        continue;
      }
      const w: SimWorker = { job, alive: true, busy: false, released: false };
      alive++;
      aliveBySite.set(job.u.site, (aliveBySite.get(job.u.site) ?? 0) + 1);
      job.live.add(w);
      job.firstWorkerAt ??= now;
      const delay = START_DELAY_S[0] + r() * (START_DELAY_S[1] - START_DELAY_S[0]);
      events.push({ t: now + delay, kind: 'start', w });
    }
    launchFailures += failed;
    peakRequested = Math.max(peakRequested, alive + failed);
  };

  const exit = (w: SimWorker) => {
    if (!w.alive) return;
    w.alive = false;
    if (w.busy) busy--;
    w.busy = false;
    alive--;
    aliveBySite.set(w.job.u.site, aliveBySite.get(w.job.u.site)! - 1);
    w.job.live.delete(w);
    if (policyName === 'ours' && !w.released) {
      // A worker exiting idle (or stopped) gives its place back: GrantStore.release.
      const h = state.holders[w.job.key];
      if (h && h.held > 0) setHolding(w.job.key, { ...h, held: h.held - 1 });
    }
  };

  const setHolding = (key: string, h: Holding | undefined) => {
    const holders = { ...state.holders };
    if (h) holders[key] = h;
    else delete holders[key];
    state = { version: state.version + 1, holders };
  };

  /** Ours: a worker between receives, or after an empty poll (GrantStore.shouldLeave). */
  const shed = (w: SimWorker): boolean => {
    const usable = w.job.totalChunks - w.job.done;
    const h = state.holders[w.job.key];
    if (!h || h.held <= 0) return true; // 'unheld'
    if (!mustShed(h, usable)) return false;
    if (h.held > h.target) shedForShare++;
    else shedForChunks++;
    setHolding(w.job.key, { ...h, held: h.held - 1 });
    const d = demand.get(w.job.key);
    if (d && d.maxWorkers > usable) demand.set(w.job.key, { ...d, maxWorkers: usable });
    w.released = true;
    return true;
  };

  const receive = (w: SimWorker) => {
    const job = w.job;
    if (job.handed < job.totalChunks) {
      const n = Math.min(CHUNKS_PER_RECEIVE, job.totalChunks - job.handed);
      let records = 0;
      for (let i = 0; i < n; i++) records += chunkSize(job, job.handed + i);
      job.handed += n;
      if (!w.busy) busy++;
      w.busy = true;
      w.idleSince = undefined;
      events.push({ t: now + (records * P.recordMs) / 1000, kind: 'batch', w, chunks: n });
      return;
    }
    if (w.busy) busy--;
    w.busy = false;
    w.idleSince ??= now;
    events.push({ t: now + LONG_POLL_S, kind: 'poll', w });
  };

  const finishJob = (job: SimJob) => {
    job.finished = now;
    active.delete(job);
    unfinished--;
    for (const w of [...job.live]) exit(w); // the finalize stops the job's tasks
    if (policyName === 'ours') {
      demand.delete(job.key); // GrantStore.finish: the demand first, then the places
      setHolding(job.key, undefined);
    }
  };

  /** Ours: one granter pass — planPass decides, the stand-in applies, the simulated launcher launches. */
  const pass = () => {
    const plan = planPass(policy, state, [...demand.values()], now * 1000);
    if (!plan.changed) return;
    state = { version: state.version + 1, holders: plan.holders };
    for (const g of plan.grants) {
      const job = jobs.find((j) => j.key === jobKey(g.site, g.token))!;
      if (g.first) demand.set(job.key, { ...demand.get(job.key)!, firstGrantAt: now * 1000 });
      launch(job, g.count);
    }
    if (alive > B) throw new Error(`ours: ${alive} workers alive with a budget of ${B}`);
  };

  /** Fifo: jobs in arrival order take what they can use, up to the budget. */
  const fill = () => {
    let free = B - alive;
    for (const job of [...active].sort((a, b) => a.u.arrival - b.u.arrival)) {
      if (free <= 0) break;
      const take = Math.min(free, usableOf(job) - job.live.size);
      if (take > 0) {
        launch(job, take);
        free -= take;
      }
    }
  };

  const afterChange = () => {
    if (policyName === 'ours') pass();
    else if (policyName === 'fifo') fill();
  };

  for (let ev = events.pop(); ev && unfinished > 0; ev = events.pop()) {
    integrate(ev.t);
    now = ev.t;
    switch (ev.kind) {
      case 'ready': {
        const job = ev.job;
        active.add(job);
        if (job.u.records < SMALL) {
          job.duringLarge = [...active].some((j) => j.u.records >= LARGE && j.firstWorkerAt !== undefined);
        }
        if (policyName === 'today') launch(job, job.workers);
        else if (policyName === 'fifo') fill();
        else {
          demand.set(job.key, {
            site: job.u.site,
            token: job.u.token,
            arrivedAt: job.u.arrival * 1000,
            requestedAt: now * 1000,
            remaining: job.u.records,
            maxWorkers: job.workers,
          });
          pass();
        }
        break;
      }
      case 'start': {
        if (!ev.w.alive) break;
        ev.w.job.firstRunningAt ??= now;
        receive(ev.w);
        break;
      }
      case 'batch': {
        const w = ev.w;
        if (!w.alive) break;
        const job = w.job;
        job.done += ev.chunks;
        if (job.done >= job.totalChunks) {
          finishJob(job);
          afterChange();
          break;
        }
        if (policyName === 'ours' && shed(w)) {
          exit(w);
          pass();
          break;
        }
        receive(w);
        break;
      }
      case 'poll': {
        const w = ev.w;
        if (!w.alive) break;
        if (w.job.handed < w.job.totalChunks) {
          receive(w);
          break;
        }
        if (policyName === 'ours' && shed(w)) {
          exit(w);
          pass();
          break;
        }
        if (now - (w.idleSince ?? now) >= IDLE_EXIT_S) {
          exit(w);
          afterChange();
          break;
        }
        events.push({ t: now + LONG_POLL_S, kind: 'poll', w });
        break;
      }
      case 'reaper': {
        if (policyName === 'today') {
          for (const job of active) {
            if (job.live.size === 0 && now - job.ready > REAPER_GRACE_S) {
              launch(job, Math.max(1, Math.min(job.workers, job.totalChunks - job.done)));
            }
          }
        } else if (policyName === 'fifo') {
          fill();
        } else {
          // Each reaper pass: reconcile against live tasks, refresh what every job still needs, grant.
          const tasks: TaskInfo[] = [];
          for (const job of active) {
            for (let i = 0; i < job.live.size; i++)
              tasks.push({ id: '', site: job.u.site, token: job.u.token });
          }
          const rec = planReconcile(state, tasks, now * 1000, REAPER_GRACE_S * 1000);
          if (rec.released > 0) throw new Error(`ours: reconciliation found ${rec.released} leaked places`);
          for (const job of active) {
            const d = demand.get(job.key);
            const fresh = demandOfJob(
              {
                totalChunks: job.totalChunks,
                chunksDone: job.done,
                totalRecords: job.u.records,
                rejected: 0,
              } as Job,
              job.workers,
            );
            if (d && fresh) demand.set(job.key, { ...d, ...fresh });
          }
          pass();
        }
        events.push({ t: now + REAPER_S, kind: 'reaper' });
        break;
      }
    }
  }

  const small = jobs.filter((j) => j.u.records < SMALL && j.duringLarge);
  const waits = small.map((j) => j.firstWorkerAt! - j.ready);
  const running = small.map((j) => j.firstRunningAt! - j.ready);
  let jainWeighted = 0;
  let jainTime = 0;
  for (const win of windows.values()) {
    const xs = [...win.fair].filter(([, f]) => f > 0).map(([s, f]) => (win.held.get(s) ?? 0) / f);
    if (xs.length === 0) continue;
    const sum = xs.reduce((a, b) => a + b, 0);
    const sq = xs.reduce((a, b) => a + b * b, 0);
    const j = sq === 0 ? 0 : (sum * sum) / (xs.length * sq);
    jainWeighted += j * win.t;
    jainTime += win.t;
  }
  return {
    policy: policyName,
    utilisation: contended > 0 ? heldInt / (B * contended) : NaN,
    busy: contended > 0 ? busyInt / (B * contended) : NaN,
    contendedHours: contended / 3600,
    smallJobs: small.length,
    smallWaitP50: quantile(waits, 0.5),
    smallWaitP99: quantile(waits, 0.99),
    smallRunningP99: quantile(running, 0.99),
    jain: jainTime > 0 ? jainWeighted / jainTime : NaN,
    peakRequested,
    launchFailures,
    shedForShare,
    shedForChunks,
    lastJobEnd: Math.max(...jobs.map((j) => j.finished ?? 0)),
  };
}

const started = process.hrtime.bigint();
const uploads = workload(P.seed);
const results = (['ours', 'today', 'fifo'] as const).map((p) => simulate(p, uploads));
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
    `  sizes (bounded Pareto, min ${SIZE.min}, alpha ${SIZE.alpha}, max ${SIZE.max.toLocaleString('en')}): ` +
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
