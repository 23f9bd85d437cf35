/**
 * The three ways of giving workers to jobs that the simulation compares:
 *
 * - **ours**: the real granting code — core/budget/policy.ts (targets, grants) through core/budget/plan.ts's pure
 *   decisions (`planPass`, `mustShed`, `planReconcile`, `demandOfJob`), the same functions the DynamoDB store
 *   runs, over an in-memory stand-in for the budget item and the demand items.
 * - **today**: no budget: every job launches its `workerCount()` workers when its split ends; the reaper
 *   relaunches a job left with none.
 * - **fifo**: jobs take workers in arrival order up to the budget; nothing is taken back.
 */
import { jobKey, type BudgetPolicy } from '../../core/budget/policy.ts';
// The pure planning the DynamoDB store runs (core/budget/store.ts), over the in-memory stand-in below.
import * as plan from '../../core/budget/plan.ts';
import type { Job } from '../../core/jobs/store.ts';
import type { TaskInfo } from '../../core/aws/task-launcher.ts';
import {
  REAPER_GRACE_S,
  usableOf,
  type PolicyName,
  type SimJob,
  type SimWorker,
  type World,
} from './model.ts';

/** A policy's side of the simulated day: what it does at each of the day's moments. */
export interface Policy {
  readonly name: PolicyName;
  /** Workers told to leave because their job's share shrank / because their job had fewer chunks left. */
  readonly shedForShare: number;
  readonly shedForChunks: number;
  /** A job's split ended: it asks for its workers. */
  ready(job: SimJob): void;
  /** A worker left or a job ended: places are free. */
  freed(): void;
  /** A worker between receives, or after an empty poll: whether it leaves now (its place already given back). */
  leaves(w: SimWorker): boolean;
  /** A worker exited (idle, stopped, or its job ended). */
  exited(w: SimWorker): void;
  /** A job ended (its workers have exited). */
  finished(job: SimJob): void;
  /** A reaper pass (every REAPER_S). */
  reaper(): void;
}

/** No budget: a job launches all its workers at its split; the reaper relaunches a job left with none. */
export function today(world: World): Policy {
  return {
    name: 'today',
    shedForShare: 0,
    shedForChunks: 0,
    ready: (job) => world.launch(job, job.workers),
    freed: () => undefined,
    leaves: () => false,
    exited: () => undefined,
    finished: () => undefined,
    reaper() {
      for (const job of world.active) {
        if (job.live.size === 0 && world.now - job.ready > REAPER_GRACE_S) {
          world.launch(job, Math.max(1, Math.min(job.workers, job.totalChunks - job.done)));
        }
      }
    },
  };
}

/** Jobs in arrival order take what they can use, up to the budget. */
export function fifo(world: World): Policy {
  const fill = () => {
    let free = world.budget - world.alive;
    for (const job of [...world.active].sort((a, b) => a.u.arrival - b.u.arrival)) {
      if (free <= 0) break;
      const take = Math.min(free, usableOf(job) - job.live.size);
      if (take > 0) {
        world.launch(job, take);
        free -= take;
      }
    }
  };
  return {
    name: 'fifo',
    shedForShare: 0,
    shedForChunks: 0,
    ready: fill,
    freed: fill,
    leaves: () => false,
    exited: () => undefined,
    finished: () => undefined,
    reaper: fill,
  };
}

/**
 * The real granting code over an in-memory budget: one budget state and one demand map, changed in one step where
 * the store does one conditional write (no concurrent granters here; their safety is what
 * test/integration/core/budget/store.test.ts checks on dynalite).
 */
export class Ours implements Policy {
  readonly name = 'ours';
  shedForShare = 0;
  shedForChunks = 0;
  private readonly policy: BudgetPolicy;
  private state: plan.BudgetState = plan.EMPTY_BUDGET;
  private readonly demand = new Map<string, plan.Demand>();

  constructor(private readonly world: World) {
    this.policy = { maxWorkers: world.budget };
  }

  ready(job: SimJob): void {
    const now = this.world.now;
    this.demand.set(job.key, {
      site: job.u.site,
      token: job.u.token,
      arrivedAt: job.u.arrival * 1000,
      requestedAt: now * 1000,
      remaining: job.u.records,
      maxWorkers: job.workers,
    });
    this.pass();
  }

  freed(): void {
    this.pass();
  }

  /** GrantStore.shouldLeave. */
  leaves(w: SimWorker): boolean {
    const usable = w.job.totalChunks - w.job.done;
    const h = this.state.holders[w.job.key];
    if (!h || h.held <= 0) return true; // 'unheld'
    if (!plan.mustShed(h, usable)) return false;
    if (h.held > h.target) this.shedForShare++;
    else this.shedForChunks++;
    this.setHolding(w.job.key, { ...h, held: h.held - 1 });
    const d = this.demand.get(w.job.key);
    if (d && d.maxWorkers > usable) this.demand.set(w.job.key, { ...d, maxWorkers: usable });
    w.released = true;
    return true;
  }

  exited(w: SimWorker): void {
    if (w.released) return;
    // A worker exiting idle (or stopped) gives its place back: GrantStore.release.
    const h = this.state.holders[w.job.key];
    if (h && h.held > 0) this.setHolding(w.job.key, { ...h, held: h.held - 1 });
  }

  finished(job: SimJob): void {
    this.demand.delete(job.key); // GrantStore.finish: the demand first, then the places
    this.setHolding(job.key, undefined);
  }

  /** Each reaper pass: reconcile against live tasks, refresh what every job still needs, grant. */
  reaper(): void {
    const { active, now } = this.world;
    const tasks: TaskInfo[] = [];
    for (const job of active) {
      for (let i = 0; i < job.live.size; i++) tasks.push({ id: '', site: job.u.site, token: job.u.token });
    }
    const rec = plan.planReconcile(this.state, tasks, now * 1000, REAPER_GRACE_S * 1000);
    if (rec.released > 0) throw new Error(`ours: reconciliation found ${rec.released} leaked places`);
    for (const job of active) {
      const d = this.demand.get(job.key);
      const fresh = plan.demandOfJob(
        {
          totalChunks: job.totalChunks,
          chunksDone: job.done,
          totalRecords: job.u.records,
          rejected: 0,
        } as Job,
        job.workers,
      );
      if (d && fresh) this.demand.set(job.key, { ...d, ...fresh });
    }
    this.pass();
  }

  /** One granter pass: planPass decides, the stand-in applies, the simulated launcher launches. */
  private pass(): void {
    const { world } = this;
    const p = plan.planPass(this.policy, this.state, [...this.demand.values()], world.now * 1000);
    if (!p.changed) return;
    this.state = { version: this.state.version + 1, holders: p.holders };
    for (const g of p.grants) {
      const job = world.jobs.find((j) => j.key === jobKey(g.site, g.token))!;
      if (g.first) this.demand.set(job.key, { ...this.demand.get(job.key)!, firstGrantAt: world.now * 1000 });
      world.launch(job, g.count);
    }
    if (world.alive > world.budget)
      throw new Error(`ours: ${world.alive} workers alive with a budget of ${world.budget}`);
  }

  private setHolding(key: string, h: plan.Holding | undefined): void {
    const holders = { ...this.state.holders };
    if (h) holders[key] = h;
    else delete holders[key];
    this.state = { version: this.state.version + 1, holders };
  }
}

export const POLICIES: Readonly<Record<PolicyName, (world: World) => Policy>> = {
  ours: (world) => new Ours(world),
  today,
  fifo,
};
