import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allocate,
  jobKey,
  planGrants,
  queueOrder,
  type BudgetPolicy,
  type JobDemand,
} from '../../../../core/budget/policy.ts';

const job = (site: string, token: string, o: Partial<Omit<JobDemand, 'site' | 'token'>> = {}): JobDemand => ({
  site,
  token,
  arrivedAt: 0,
  remaining: 1000,
  maxWorkers: 10,
  held: 0,
  ...o,
});

const target = (a: ReturnType<typeof allocate>, site: string, token: string) =>
  a.targets.get(jobKey(site, token));

describe('Function: allocate', () => {
  it('splits the budget equally among sites that each want more than their share', () => {
    // Prepare
    const demand = [job('a', 'a1'), job('b', 'b1'), job('c', 'c1', { maxWorkers: 50 })];

    // Act
    const a = allocate({ maxWorkers: 12 }, demand);

    // Assess
    expect(Object.fromEntries(a.sites)).toEqual({ a: 4, b: 4, c: 4 });
    expect(a.sequence).toHaveLength(12);
  });

  it('gives what a site cannot use to the others (work-conserving)', () => {
    // Prepare
    const demand = [job('a', 'a1', { maxWorkers: 1 }), job('b', 'b1', { maxWorkers: 2 }), job('c', 'c1')];

    // Act
    const a = allocate({ maxWorkers: 12 }, demand);

    // Assess
    expect(Object.fromEntries(a.sites)).toEqual({ a: 1, b: 2, c: 9 });
  });

  it('follows the weights and never passes a site cap', () => {
    // Prepare
    const policy: BudgetPolicy = {
      maxWorkers: 12,
      sites: { a: { weight: 2 }, c: { maxWorkers: 1 } },
    };
    const demand = [job('a', 'a1', { maxWorkers: 20 }), job('b', 'b1', { maxWorkers: 20 }), job('c', 'c1')];

    // Act
    const a = allocate(policy, demand);

    // Assess
    expect(Object.fromEntries(a.sites)).toEqual({ a: 7, b: 4, c: 1 });
  });

  it("gives a site's first worker to its oldest job, the rest smallest first", () => {
    // Prepare
    const demand = [
      job('a', 'big', { arrivedAt: 1, remaining: 200_000, maxWorkers: 4 }),
      job('a', 'small1', { arrivedAt: 2, remaining: 20, maxWorkers: 1 }),
      job('a', 'small2', { arrivedAt: 3, remaining: 10, maxWorkers: 1 }),
      job('a', 'mid', { arrivedAt: 4, remaining: 5000, maxWorkers: 2 }),
    ];

    // Act
    const a = allocate({ maxWorkers: 4 }, demand);

    // Assess
    expect(a.sequence).toEqual(['a#big', 'a#small2', 'a#small1', 'a#mid']);
    expect(target(a, 'a', 'big')).toBe(1);
    expect(target(a, 'a', 'mid')).toBe(1);
  });

  it('serves small jobs of other sites at once while one site runs a large job (budget 4)', () => {
    // Prepare: the local target's shape — a 200,000-record job, then small jobs of two other sites.
    const demand = [
      job('a', 'big', { arrivedAt: 0, remaining: 200_000, maxWorkers: 4, held: 4 }),
      ...[1, 2, 3].map((i) => job('b', `b${i}`, { arrivedAt: i, remaining: 20, maxWorkers: 1 })),
      ...[1, 2].map((i) => job('c', `c${i}`, { arrivedAt: 10 + i, remaining: 20, maxWorkers: 1 })),
    ];

    // Act
    const a = allocate({ maxWorkers: 4 }, demand);

    // Assess: the large job keeps one worker; the three others go to small jobs.
    expect(target(a, 'a', 'big')).toBe(1);
    expect(Object.fromEntries(a.sites)).toEqual({ a: 1, b: 2, c: 1 });
  });

  it('with more sites than workers, serves the sites whose next job is smallest, then oldest', () => {
    // Prepare
    const demand = [
      job('a', 'a1', { arrivedAt: 5, remaining: 100 }),
      job('b', 'b1', { arrivedAt: 1, remaining: 100 }),
      job('c', 'c1', { arrivedAt: 9, remaining: 10 }),
    ];

    // Act
    const a = allocate({ maxWorkers: 2 }, demand);

    // Assess
    expect(a.sequence).toEqual(['c#c1', 'b#b1']);
    expect(target(a, 'a', 'a1')).toBe(0);
  });

  it('lists every job of the demand, with 0 for a job that can use no worker', () => {
    // Prepare
    const demand = [job('a', 'a1', { maxWorkers: 0 }), job('b', 'b1')];

    // Act
    const a = allocate({ maxWorkers: 3 }, demand);

    // Assess
    expect(Object.fromEntries(a.targets)).toEqual({ 'a#a1': 0, 'b#b1': 3 });
    expect(Object.fromEntries(a.sites)).toEqual({ b: 3 });
  });

  it('refuses a job twice in the demand and a budget that is not a whole number', () => {
    // Prepare
    const twice = [job('a', 'a1'), job('a', 'a1')];

    // Act
    const dup = () => allocate({ maxWorkers: 3 }, twice);
    const frac = () => allocate({ maxWorkers: 2.5 }, [job('a', 'a1')]);

    // Assess
    expect(dup).toThrow(/twice/);
    expect(frac).toThrow(/whole number/);
  });
});

describe('Function: planGrants', () => {
  it('hands freed workers to the job furthest below its share, never past its target', () => {
    // Prepare: a holds 3 of a budget of 4 (its target is now 2); b waits.
    const demand = [job('a', 'a1', { held: 3, arrivedAt: 0 }), job('b', 'b1', { arrivedAt: 1 })];

    // Act
    const grants = planGrants({ maxWorkers: 4 }, demand);

    // Assess
    expect(Object.fromEntries(grants)).toEqual({ 'b#b1': 1 });
  });

  it('grants nothing while every worker of the budget is held, even by jobs above their target', () => {
    // Prepare
    const demand = [job('a', 'a1', { held: 4 }), job('b', 'b1', { arrivedAt: 1 })];

    // Act
    const grants = planGrants({ maxWorkers: 4 }, demand);

    // Assess
    expect(grants.size).toBe(0);
  });
});

describe('Function: queueOrder', () => {
  it('orders waiting jobs by when the fair sequence reaches them', () => {
    // Prepare: budget 2, fully held by site a; b has two jobs, c one.
    const demand = [
      job('a', 'a1', { held: 2, arrivedAt: 0, remaining: 1e6 }),
      job('b', 'b1', { arrivedAt: 1, remaining: 500, maxWorkers: 1 }),
      job('b', 'b2', { arrivedAt: 2, remaining: 50, maxWorkers: 1 }),
      job('c', 'c1', { arrivedAt: 3, remaining: 5000, maxWorkers: 1 }),
    ];

    // Act
    const order = queueOrder({ maxWorkers: 2 }, demand);

    // Assess: b's oldest job first (its site's first unit), then c (its first unit), then b2.
    expect(order).toEqual(['b#b1', 'c#c1', 'b#b2']);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Properties

const SITES = ['a', 'b', 'c', 'd', 'e'] as const;

const arbPolicy = fc.record({
  maxWorkers: fc.integer({ min: 0, max: 60 }),
  sites: fc.dictionary(
    fc.constantFrom(...SITES),
    fc.record(
      {
        weight: fc.constantFrom(0.5, 1, 2, 3),
        maxWorkers: fc.integer({ min: 0, max: 20 }),
      },
      { requiredKeys: [] },
    ),
  ),
});

const arbDemand = fc
  .array(
    fc.record({
      site: fc.constantFrom(...SITES),
      arrivedAt: fc.integer({ min: 0, max: 50 }),
      remaining: fc.integer({ min: 1, max: 1_000_000 }),
      maxWorkers: fc.integer({ min: 0, max: 12 }),
      held: fc.integer({ min: 0, max: 6 }),
    }),
    { maxLength: 30 },
  )
  .map((jobs) => jobs.map((j, i): JobDemand => ({ ...j, token: `t${String(i).padStart(2, '0')}` })));

const weightOf = (p: BudgetPolicy, s: string) => p.sites?.[s]?.weight ?? 1;
const capOf = (p: BudgetPolicy, s: string) => p.sites?.[s]?.maxWorkers ?? Infinity;

/** What each site with demand can use: its jobs' maxima within its cap. */
function siteDemand(p: BudgetPolicy, demand: readonly JobDemand[]): Map<string, number> {
  const d = new Map<string, number>();
  for (const j of demand) if (j.maxWorkers > 0) d.set(j.site, (d.get(j.site) ?? 0) + j.maxWorkers);
  for (const [s, n] of d) d.set(s, Math.min(n, capOf(p, s)));
  return d;
}

const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0);

describe('Properties: allocate', () => {
  it('never passes the budget, a site cap or what a job can use', () => {
    fc.assert(
      fc.property(arbPolicy, arbDemand, (policy, demand) => {
        // Act
        const a = allocate(policy, demand);

        // Assess
        expect(sum(a.targets.values())).toBeLessThanOrEqual(policy.maxWorkers);
        for (const [s, n] of a.sites) expect(n).toBeLessThanOrEqual(capOf(policy, s));
        for (const j of demand) {
          expect(target(a, j.site, j.token)).toBeLessThanOrEqual(Math.max(0, j.maxWorkers));
        }
      }),
    );
  });

  it('is work-conserving: hands out min(budget, what the sites can use)', () => {
    fc.assert(
      fc.property(arbPolicy, arbDemand, (policy, demand) => {
        // Act
        const a = allocate(policy, demand);

        // Assess
        const usable = sum(siteDemand(policy, demand).values());
        expect(sum(a.targets.values())).toBe(Math.min(policy.maxWorkers, usable));
      }),
    );
  });

  it('is weighted max-min fair: no site below its share while another above it could give', () => {
    fc.assert(
      fc.property(arbPolicy, arbDemand, (policy, demand) => {
        // Act
        const a = allocate(policy, demand);

        // Assess: for a site `low` that could use more and any site `high` holding workers, moving one
        // worker from `high` to `low` would not raise the lower of the two levels: (h − 1)/w_h ≤ l/w_l.
        const d = siteDemand(policy, demand);
        for (const [low, nLow] of a.sites) {
          if (nLow >= d.get(low)!) continue;
          for (const [high, nHigh] of a.sites) {
            if (high === low || nHigh === 0) continue;
            const highLessOne = (nHigh - 1) / weightOf(policy, high);
            const levelLow = nLow / weightOf(policy, low);
            expect(highLessOne).toBeLessThanOrEqual(levelLow + 1e-9);
          }
        }
      }),
    );
  });

  it("within a site: the oldest job gets the site's first worker, then smaller jobs fill before larger", () => {
    fc.assert(
      fc.property(arbPolicy, arbDemand, (policy, demand) => {
        // Act
        const a = allocate(policy, demand);

        // Assess
        for (const [site, n] of a.sites) {
          const jobs = demand.filter((j) => j.site === site && j.maxWorkers > 0);
          const oldest = [...jobs].sort(
            (x, y) => x.arrivedAt - y.arrivedAt || x.token.localeCompare(y.token),
          )[0]!;
          if (n > 0) expect(target(a, site, oldest.token)).toBeGreaterThanOrEqual(1);
          // Beyond the oldest job's first unit, a job gets a unit only once every smaller job is full.
          const extra = (j: JobDemand) => target(a, site, j.token)! - (j === oldest ? 1 : 0);
          for (const x of jobs) {
            for (const y of jobs) {
              const xFirst =
                x.remaining < y.remaining ||
                (x.remaining === y.remaining &&
                  (x.arrivedAt < y.arrivedAt || (x.arrivedAt === y.arrivedAt && x.token < y.token)));
              if (xFirst && extra(y) > 0) expect(target(a, site, x.token)).toBe(x.maxWorkers);
            }
          }
        }
      }),
    );
  });

  it('does not depend on the order the demand is listed in', () => {
    fc.assert(
      fc.property(
        arbPolicy,
        arbDemand.chain((d) => fc.tuple(fc.constant(d), fc.shuffledSubarray(d, { minLength: d.length }))),
        (policy, [demand, shuffled]) => {
          // Act
          const a = allocate(policy, demand);
          const b = allocate(policy, shuffled);

          // Assess
          expect(b.sequence).toEqual(a.sequence);
          expect(Object.fromEntries(b.targets)).toEqual(Object.fromEntries(a.targets));
        },
      ),
    );
  });
});

describe('Properties: planGrants and queueOrder', () => {
  it('never grants past the budget or a target, and fills the free workers while some job is short', () => {
    fc.assert(
      fc.property(arbPolicy, arbDemand, fc.integer({ min: 0, max: 8 }), (policy, demand, elsewhere) => {
        // Act
        const a = allocate(policy, demand);
        const grants = planGrants(policy, demand, a, elsewhere);

        // Assess: workers held by ended jobs count against the budget too.
        const held = sum(demand.map((j) => j.held)) + elsewhere;
        const granted = sum(grants.values());
        expect(held + granted).toBeLessThanOrEqual(Math.max(policy.maxWorkers, held));
        if (held >= policy.maxWorkers) expect(granted).toBe(0);
        let short = 0;
        for (const j of demand) {
          const key = jobKey(j.site, j.token);
          const g = grants.get(key) ?? 0;
          if (g > 0) expect(j.held + g).toBeLessThanOrEqual(a.targets.get(key)!);
          short += Math.max(0, a.targets.get(key)! - j.held - g);
        }
        const free = Math.max(0, policy.maxWorkers - held - granted);
        expect(short === 0 || free === 0).toBe(true);
      }),
    );
  });

  it('queues exactly the jobs that hold no worker and can use one', () => {
    fc.assert(
      fc.property(arbPolicy, arbDemand, (policy, demand) => {
        // Act
        const order = queueOrder(policy, demand);

        // Assess
        const waiting = demand.filter((j) => j.held === 0 && j.maxWorkers > 0);
        expect([...order].sort()).toEqual(waiting.map((j) => jobKey(j.site, j.token)).sort());
      }),
    );
  });
});
