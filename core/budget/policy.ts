import { BinaryHeap } from '../shared/heap.ts';
import { own } from '../shared/own.ts';

/**
 * The stage's worker budget: how many workers each job should have when jobs of many sites want more
 * workers than the stage may run at once. Pure and deterministic — no clock, no randomness, no I/O — so
 * the granting code (core/budget/store.ts), the tests and the simulation (scripts/simulate.ts) all run this
 * one rule.
 *
 * **Across sites: weighted max-min fairness.** The budget is handed out one worker ("unit") at a time,
 * always to the site with the lowest level (workers so far ÷ its weight) among sites that can still use a
 * worker (their jobs' maxima, within the site's cap). So a site that holds workers never holds one more
 * than it could while another site that wants more sits lower: for any such pair, (high − 1) / w_high ≤
 * low / w_low, which is weighted max-min fairness in whole workers. Whatever a site cannot use goes to the others
 * (work-conserving: every unit is handed out while anybody can use it). Sites at the same level are
 * served in the order of the job their unit would go to: the smaller job first (it ends soonest and gives
 * the worker back), then the earlier one, then by site id.
 *
 * **Within a site: the oldest job's first worker, then smallest first.** A site's first unit always goes to
 * its oldest job; every further unit goes to its jobs smallest (fewest records left) first, each up to what
 * it can use. Why:
 * - Smallest first (shortest remaining work first) is what gets a 20-row file through in seconds while the
 *   same site's 200,000-record job is running: the small job needs one worker for a few seconds, the large
 *   one hardly notices. Arrival order would make every small upload of a site wait behind its large one.
 * - Pure smallest-first starves a large job while its site keeps uploading small files. The oldest job's
 *   guaranteed unit bounds that: the oldest job of every site with any worker always progresses, and every
 *   job becomes its site's oldest once the jobs before it end (arrival order decides who is "oldest").
 * - Across sites, nobody waits behind another site's job at all: that is what the site level is for.
 */

/** Per-site settings of the budget (config: `workerBudget.sites`). */
export interface SiteBudget {
  /** Share of the budget relative to other sites. @default 1 */
  readonly weight?: number;
  /** Most workers the site's jobs may hold at once. @default no cap beyond the stage budget */
  readonly maxWorkers?: number;
}

export interface BudgetPolicy {
  /** Most workers running at once in the stage. */
  readonly maxWorkers: number;
  /** Weights and caps by site id; a site not listed has weight 1 and no cap of its own. */
  readonly sites?: Readonly<Record<string, SiteBudget>>;
}

/** One job that wants workers (its chunks are on its queue) or holds some. */
export interface JobDemand {
  readonly site: string;
  readonly token: string;
  /** When the job arrived (epoch ms): decides the site's oldest job. */
  readonly arrivedAt: number;
  /** Work left (records): the smallest-first key. */
  readonly remaining: number;
  /** Most workers the job can use now (its per-job maximum, at most its chunks left); 0 = none. */
  readonly maxWorkers: number;
  /** Workers the job holds now (granted, starting or running). */
  readonly held: number;
}

/** The key of a job in the budget: the site travels with the token. */
export function jobKey(site: string, token: string): string {
  return `${site}#${token}`;
}

export interface Allocation {
  /** Workers each job should have, by {@link jobKey}; every job of the demand is listed (0 = none now). */
  readonly targets: ReadonlyMap<string, number>;
  /** Workers per site with demand. */
  readonly sites: ReadonlyMap<string, number>;
  /** The units in the order fairness hands them out: entry k is the job that gets unit k. */
  readonly sequence: readonly string[];
}

const EPSILON = 1e-9;

/** A site's jobs, handing out its units in the within-site order. */
class SiteQueue {
  readonly weight: number;
  readonly demand: number;
  given = 0;
  private readonly oldest: JobDemand;
  private readonly bySize: JobDemand[];
  private readonly count = new Map<JobDemand, number>();
  private cursor = 0;

  constructor(
    readonly site: string,
    jobs: JobDemand[],
    budget: SiteBudget | undefined,
  ) {
    this.weight = budget?.weight ?? 1;
    if (!(this.weight > 0)) throw new Error(`site ${site}: weight must be > 0`);
    const usable = jobs.reduce((n, j) => n + j.maxWorkers, 0);
    this.demand = Math.max(0, Math.min(budget?.maxWorkers ?? Infinity, usable));
    this.oldest = jobs.reduce((a, b) => (byArrival(b, a) < 0 ? b : a));
    this.bySize = [...jobs].sort(bySize);
  }

  get open(): boolean {
    return this.given < this.demand;
  }

  /** The job the site's next unit goes to. */
  peek(): JobDemand {
    if (this.given === 0) return this.oldest;
    while ((this.count.get(this.bySize[this.cursor]!) ?? 0) >= this.bySize[this.cursor]!.maxWorkers) {
      this.cursor++;
    }
    return this.bySize[this.cursor]!;
  }

  take(): JobDemand {
    const job = this.peek();
    this.count.set(job, (this.count.get(job) ?? 0) + 1);
    this.given++;
    return job;
  }

  /** The site's level: workers so far per unit of weight. */
  level(): number {
    return this.given / this.weight;
  }
}

const byArrival = (a: JobDemand, b: JobDemand) =>
  a.arrivedAt - b.arrivedAt || (a.token < b.token ? -1 : a.token > b.token ? 1 : 0);
const bySize = (a: JobDemand, b: JobDemand) => a.remaining - b.remaining || byArrival(a, b);

/** Which of two sites gets the next unit: the lower level, then the smaller next job, then the older, then by id. */
function before(a: SiteQueue, b: SiteQueue): boolean {
  const la = a.level();
  const lb = b.level();
  if (Math.abs(la - lb) > EPSILON * Math.max(1, la, lb)) return la < lb;
  const c = bySize(a.peek(), b.peek());
  if (c !== 0) return c < 0;
  return a.site < b.site;
}

/**
 * Computes every job's target: weighted max-min fairness across sites, the oldest job's first unit and then
 * smallest first within a site. Never more than the budget in total, than a site's cap for a site, than a
 * job's `maxWorkers` for a job; and every unit is handed out while some job can still use one.
 * With `extend`, the sequence goes on past the budget until every job's demand is placed (queue positions).
 */
export function allocate(
  policy: BudgetPolicy,
  demand: readonly JobDemand[],
  opts: { extend?: boolean } = {},
): Allocation {
  if (!Number.isInteger(policy.maxWorkers) || policy.maxWorkers < 0) {
    throw new Error(`budget maxWorkers must be a whole number ≥ 0, got ${policy.maxWorkers}`);
  }
  const targets = new Map<string, number>();
  const bySite = new Map<string, JobDemand[]>();
  for (const j of demand) {
    const key = jobKey(j.site, j.token);
    if (targets.has(key)) throw new Error(`job ${key} appears twice in the demand`);
    targets.set(key, 0);
    if (j.maxWorkers <= 0) continue;
    const list = bySite.get(j.site) ?? [];
    list.push(j);
    bySite.set(j.site, list);
  }
  // The open sites, the one to get the next unit first.
  const heap = new BinaryHeap(before);
  const queues: SiteQueue[] = [];
  for (const [site, jobs] of [...bySite].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const q = new SiteQueue(site, jobs, own(policy.sites, site));
    queues.push(q);
    if (q.open) heap.push(q);
  }
  const sequence: string[] = [];
  const limit = opts.extend ? Infinity : policy.maxWorkers;
  while (sequence.length < limit && heap.size > 0) {
    const q = heap.pop()!;
    const job = q.take();
    const key = jobKey(job.site, job.token);
    sequence.push(key);
    if (sequence.length <= policy.maxWorkers) targets.set(key, targets.get(key)! + 1);
    if (q.open) heap.push(q);
  }
  const sites = new Map<string, number>(queues.map((q) => [q.site, 0]));
  for (const j of demand) {
    const t = targets.get(jobKey(j.site, j.token))!;
    if (t > 0) sites.set(j.site, sites.get(j.site)! + t);
  }
  return { targets, sites, sequence };
}

/**
 * Which jobs get the workers free right now (budget minus every worker held, including those of jobs above
 * their target that have not left yet): the units of the fair sequence that their job does not hold yet,
 * in sequence order. So the freed worker goes to whoever is furthest below its fair share, no job is
 * granted past its target, and the total held never passes the budget.
 */
export function planGrants(
  policy: BudgetPolicy,
  demand: readonly JobDemand[],
  allocation: Allocation = allocate(policy, demand),
  /** Workers held by jobs outside the demand (ended, not yet given back): they count against the budget. */
  heldElsewhere = 0,
): Map<string, number> {
  const held = new Map(demand.map((j) => [jobKey(j.site, j.token), j.held]));
  let free = policy.maxWorkers - heldElsewhere - demand.reduce((n, j) => n + j.held, 0);
  const seen = new Map<string, number>();
  const grants = new Map<string, number>();
  for (const key of allocation.sequence.slice(0, policy.maxWorkers)) {
    if (free <= 0) break;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > (held.get(key) ?? 0)) {
      grants.set(key, (grants.get(key) ?? 0) + 1);
      free--;
    }
  }
  return grants;
}

/**
 * The jobs holding no worker, in the order they will get their first one (position 1 first): the order of
 * their first unit in the fair sequence extended past the budget (then jobs only their site's cap holds back).
 */
export function queueOrder(policy: BudgetPolicy, demand: readonly JobDemand[]): string[] {
  const waiting = new Set(
    demand.filter((j) => j.held === 0 && j.maxWorkers > 0).map((j) => jobKey(j.site, j.token)),
  );
  const order: string[] = [];
  if (waiting.size === 0) return order;
  for (const key of allocate(policy, demand, { extend: true }).sequence) {
    if (waiting.delete(key)) order.push(key);
    if (waiting.size === 0) return order;
  }
  // Jobs that their site's cap keeps out even past the budget: after everyone else, smallest first.
  const rest = demand.filter((j) => waiting.has(jobKey(j.site, j.token))).sort(bySize);
  return [...order, ...rest.map((j) => jobKey(j.site, j.token))];
}
