/**
 * The worker budget's pure planning: what the budget item holds, who is due how many workers in a pass, who must
 * shed, and which held places a reconcile gives back. No I/O: the grant store (store.ts) reads the items, calls
 * these and writes the result under its conditions.
 */
import type { Job } from '../jobs/store.ts';
import { allocate, jobKey, planGrants, type BudgetPolicy, type JobDemand } from './policy.ts';
import type { TaskInfo } from '../aws/task-launcher.ts';

/** What the budget item keeps per job. */
export interface Holding {
  /** Workers the job holds (granted, starting or running). */
  readonly held: number;
  /** Workers it should have; above it, its workers leave after their chunks in hand. */
  readonly target: number;
  /** Epoch ms of its last grant (reconciliation leaves younger grants alone: their tasks may be starting). */
  readonly grantedAt: number;
}

export interface BudgetState {
  /** 0 before the first write. */
  readonly version: number;
  /** By {@link jobKey}. */
  readonly holders: Readonly<Record<string, Holding>>;
}

export const EMPTY_BUDGET: BudgetState = { version: 0, holders: {} };

/** A job that asked for workers. */
export interface Demand {
  readonly site: string;
  readonly token: string;
  /** When the job arrived (epoch ms; its upload): decides the site's oldest job. */
  readonly arrivedAt: number;
  /** When it asked for workers (epoch ms; its split done): the start of its queue wait. */
  readonly requestedAt: number;
  /** Records left. */
  readonly remaining: number;
  /** Most workers it can use now. */
  readonly maxWorkers: number;
  /** When it got its first worker (epoch ms). */
  readonly firstGrantAt?: number;
  /** No new workers before this (epoch ms): a launch for it was refused, the retry waits out its backoff. */
  readonly notBefore?: number;
}

/** Workers a pass granted one job, to be launched. */
export interface Grant {
  readonly site: string;
  readonly token: string;
  readonly count: number;
  /** The job's first worker ever: it leaves the queue now (QUEUED → RUNNING). */
  readonly first: boolean;
  /** For a first grant: how long the job waited since it asked (ms). */
  readonly waitedMs?: number;
}

export interface PassPlan {
  readonly holders: Record<string, Holding>;
  readonly grants: Grant[];
  /** False when nothing would change: no write needed. */
  readonly changed: boolean;
  /** Workers held after the pass. */
  readonly used: number;
  /** Jobs that want workers and hold none after the pass. */
  readonly queued: number;
}

/**
 * The budget's view of the demand: each asking job with the workers it holds. A job waiting out a refused
 * launch's backoff (`notBefore`) can use no more than it holds until then, so its share goes to the others.
 */
export function demandOf(state: BudgetState, demand: readonly Demand[], now = 0): JobDemand[] {
  return demand.map((d) => {
    const held = state.holders[jobKey(d.site, d.token)]?.held ?? 0;
    const waiting = d.notBefore !== undefined && d.notBefore > now;
    return {
      site: d.site,
      token: d.token,
      arrivedAt: d.arrivedAt,
      remaining: d.remaining,
      maxWorkers: waiting ? Math.min(held, d.maxWorkers) : d.maxWorkers,
      held,
    };
  });
}

/**
 * One granter pass, decided (pure; the store and the simulation both run it): new targets for every job
 * from core/budget/policy.ts, and the free workers granted to the jobs furthest below their share. Jobs that
 * hold workers but asked for none any more (ended, not yet released) keep them at target 0.
 */
export function planPass(
  policy: BudgetPolicy,
  state: BudgetState,
  demand: readonly Demand[],
  now: number,
): PassPlan {
  const jobs = demandOf(state, demand, now);
  const allocation = allocate(policy, jobs);
  const holders: Record<string, Holding> = {};
  const asking = new Set(jobs.map((j) => jobKey(j.site, j.token)));
  let heldElsewhere = 0;
  for (const [key, h] of Object.entries(state.holders)) {
    if (!asking.has(key) && h.held > 0) {
      holders[key] = { ...h, target: 0 };
      heldElsewhere += h.held;
    }
  }
  const granted = planGrants(policy, jobs, allocation, heldElsewhere);
  const grants: Grant[] = [];
  let queued = 0;
  demand.forEach((d, i) => {
    const key = jobKey(d.site, d.token);
    const held = jobs[i]!.held;
    const count = granted.get(key) ?? 0;
    const target = allocation.targets.get(key)!;
    const before = state.holders[key];
    if (held + count > 0 || target > 0) {
      holders[key] = { held: held + count, target, grantedAt: count > 0 ? now : (before?.grantedAt ?? 0) };
    }
    if (count > 0) {
      const first = held === 0 && d.firstGrantAt === undefined;
      grants.push({
        site: d.site,
        token: d.token,
        count,
        first,
        ...(first ? { waitedMs: Math.max(0, now - d.requestedAt) } : {}),
      });
    }
    if (held + count === 0 && jobs[i]!.maxWorkers > 0) queued++;
  });
  const used = Object.values(holders).reduce((n, h) => n + h.held, 0);
  return { holders, grants, changed: !sameHolders(state.holders, holders), used, queued };
}

function sameHolders(a: Readonly<Record<string, Holding>>, b: Readonly<Record<string, Holding>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => {
    const x = a[k]!;
    const y = b[k];
    return y !== undefined && x.held === y.held && x.target === y.target && x.grantedAt === y.grantedAt;
  });
}

/**
 * The figures for the metrics (the reaper publishes them each pass): workers held, jobs waiting for their
 * first worker, and how long the oldest of them has waited — the alarm's input, since a wait measured only
 * when a job is finally granted would never show a job that is never granted.
 */
export function queueStats(
  state: BudgetState,
  demand: readonly Demand[],
  now: number,
): { used: number; queued: number; oldestWaitMs: number } {
  let queued = 0;
  let oldestWaitMs = 0;
  for (const d of demand) {
    if (d.firstGrantAt !== undefined || d.maxWorkers <= 0) continue;
    if ((state.holders[jobKey(d.site, d.token)]?.held ?? 0) > 0) continue;
    queued++;
    oldestWaitMs = Math.max(oldestWaitMs, now - d.requestedAt);
  }
  const used = Object.values(state.holders).reduce((n, h) => n + h.held, 0);
  return { used, queued, oldestWaitMs };
}

/** What a worker should do between receives (see {@link GrantStore.shouldLeave}). */
export type LeaveDecision =
  /** Its job holds no more than it should: go on. */
  | 'stay'
  /** Its job held more than its target: this worker's place was given back; exit now. */
  | 'leave'
  /** Its job holds no place at all (ended, or given back by reconciliation): exit now, nothing to give back. */
  | 'unheld';

/** The leave rule (pure): a job above its target, or above the chunks it has left, sheds one worker. */
export function mustShed(h: Holding | undefined, usable = Infinity): boolean {
  return h !== undefined && h.held > Math.min(h.target, usable);
}

/**
 * Reconciliation (pure): each job's held workers brought down to its live tasks, unless its last grant is
 * younger than `graceMs` before `listedAt` (those tasks may still be starting). Returns the new holders and
 * how many places were given back.
 */
export function planReconcile(
  state: BudgetState,
  tasks: readonly TaskInfo[],
  listedAt: number,
  graceMs: number,
): { holders: Record<string, Holding>; released: number; jobs: string[] } {
  const live = new Map<string, number>();
  for (const t of tasks) live.set(jobKey(t.site, t.token), (live.get(jobKey(t.site, t.token)) ?? 0) + 1);
  const holders: Record<string, Holding> = {};
  let released = 0;
  const jobs: string[] = [];
  for (const [key, h] of Object.entries(state.holders)) {
    const alive = live.get(key) ?? 0;
    if (h.held > alive && h.grantedAt < listedAt - graceMs) {
      released += h.held - alive;
      jobs.push(key);
      if (alive > 0 || h.target > 0) holders[key] = { ...h, held: alive };
    } else {
      holders[key] = h;
    }
  }
  return { holders, released, jobs };
}

/** The demand of a running job from its record (for the reaper's refresh): records and chunks left. */
export function demandOfJob(
  job: Job,
  maxWorkers: number,
): Pick<Demand, 'remaining' | 'maxWorkers'> | undefined {
  if (job.totalChunks === undefined || job.totalRecords === undefined) return undefined;
  const chunksLeft = Math.max(0, job.totalChunks - job.chunksDone);
  const valid = job.totalRecords - (job.rejected ?? 0);
  const remaining =
    job.totalChunks === 0 ? 0 : Math.ceil((valid * chunksLeft) / Math.max(1, job.totalChunks));
  return { remaining, maxWorkers: Math.min(maxWorkers, chunksLeft) };
}

/** The job key a hypothetical demand takes in {@link grantIfAsked} (no job token looks like it). */
const ASKING_NOW = '(check)';

/**
 * How many workers a job of `site` asking now would be granted by a granter pass (pure; read-only for the budget):
 * the same pass as {@link planPass}, with the job added to the demand as the newest. The check's estimate
 * (POST /jobs?check=true) shows it beside the workers the job would ask for.
 */
export function grantIfAsked(
  policy: BudgetPolicy,
  state: BudgetState,
  demand: readonly Demand[],
  ask: Pick<Demand, 'site' | 'remaining' | 'maxWorkers'>,
  now: number,
): number {
  if (ask.maxWorkers <= 0) return 0;
  const asking: Demand = { ...ask, token: ASKING_NOW, arrivedAt: now, requestedAt: now };
  const plan = planPass(policy, state, [...demand, asking], now);
  return plan.grants.find((g) => g.site === ask.site && g.token === ASKING_NOW)?.count ?? 0;
}
