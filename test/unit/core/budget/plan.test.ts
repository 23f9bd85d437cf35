import { describe, expect, it } from 'vitest';
import { jobKey } from '../../../../core/budget/policy.ts';
import {
  demandOfJob,
  EMPTY_BUDGET,
  mustShed,
  planPass,
  planReconcile,
  queueStats,
  type BudgetState,
  type Demand,
} from '../../../../core/budget/plan.ts';
import type { Job } from '../../../../core/jobs/store.ts';

const ask = (site: string, token: string, o: Partial<Demand> = {}): Demand => ({
  site,
  token,
  arrivedAt: 0,
  requestedAt: 0,
  remaining: 1000,
  maxWorkers: 4,
  ...o,
});

describe('Function: planPass', () => {
  it('grants the free workers, marks first grants with their wait, and counts the queue', () => {
    // Prepare
    const demand = [ask('a', 'a1', { requestedAt: 1000 }), ask('b', 'b1'), ask('c', 'c1', { arrivedAt: 5 })];

    // Act
    const plan = planPass({ maxWorkers: 2 }, EMPTY_BUDGET, demand, 4000);

    // Assess
    expect(plan.grants).toEqual([
      { site: 'a', token: 'a1', count: 1, first: true, waitedMs: 3000 },
      { site: 'b', token: 'b1', count: 1, first: true, waitedMs: 4000 },
    ]);
    expect(plan).toMatchObject({ changed: true, used: 2, queued: 1 });
    expect(plan.holders[jobKey('c', 'c1')]).toBeUndefined();
  });

  it('keeps the workers of a job that stopped asking at target 0, and counts them against the budget', () => {
    // Prepare
    const state: BudgetState = {
      version: 3,
      holders: { [jobKey('a', 'gone')]: { held: 2, target: 2, grantedAt: 7 } },
    };

    // Act
    const plan = planPass({ maxWorkers: 3 }, state, [ask('b', 'b1')], 10);

    // Assess
    expect(plan.holders[jobKey('a', 'gone')]).toEqual({ held: 2, target: 0, grantedAt: 7 });
    expect(plan.grants).toMatchObject([{ token: 'b1', count: 1 }]);
    expect(plan.used).toBe(3);
  });

  it('changes nothing when the state already is what the demand asks for', () => {
    // Prepare
    const first = planPass({ maxWorkers: 4 }, EMPTY_BUDGET, [ask('a', 'a1')], 10);
    const state: BudgetState = { version: 1, holders: first.holders };

    // Act
    const again = planPass({ maxWorkers: 4 }, state, [ask('a', 'a1', { firstGrantAt: 10 })], 20);

    // Assess
    expect(again.changed).toBe(false);
    expect(again.grants).toEqual([]);
  });
});

describe('Function: mustShed', () => {
  it('sheds above the target or above the chunks left, never otherwise', () => {
    // Prepare
    const h = { held: 3, target: 3, grantedAt: 0 };

    // Act
    const cases = [mustShed(h), mustShed(h, 2), mustShed({ ...h, target: 2 }), mustShed(undefined)];

    // Assess
    expect(cases).toEqual([false, true, true, false]);
  });
});

describe('Function: planReconcile', () => {
  it('brings held places down to live tasks, sparing grants younger than the grace', () => {
    // Prepare
    const state: BudgetState = {
      version: 1,
      holders: {
        [jobKey('a', 'old')]: { held: 3, target: 3, grantedAt: 0 },
        [jobKey('b', 'new')]: { held: 2, target: 2, grantedAt: 950 },
        [jobKey('c', 'gone')]: { held: 1, target: 0, grantedAt: 0 },
      },
    };
    const tasks = [{ id: 't', site: 'a', token: 'old' }];

    // Act
    const r = planReconcile(state, tasks, 1000, 100);

    // Assess
    expect(r.released).toBe(3);
    expect(r.holders).toEqual({
      [jobKey('a', 'old')]: { held: 1, target: 3, grantedAt: 0 },
      [jobKey('b', 'new')]: { held: 2, target: 2, grantedAt: 950 },
    });
  });
});

describe('Function: demandOfJob', () => {
  it("derives records and usable workers from a running job's progress", () => {
    // Prepare
    const job = { totalChunks: 10, chunksDone: 8, totalRecords: 1000, rejected: 0 } as unknown as Job;

    // Act
    const d = demandOfJob(job, 4);

    // Assess
    expect(d).toEqual({ remaining: 200, maxWorkers: 2 });
    expect(demandOfJob({ chunksDone: 0 } as unknown as Job, 4)).toBeUndefined();
  });
});

describe('Function: queueStats', () => {
  it('counts the jobs still waiting for a first worker and the age of the oldest', () => {
    // Prepare
    const state: BudgetState = {
      version: 1,
      holders: { [jobKey('a', 'run')]: { held: 2, target: 2, grantedAt: 0 } },
    };
    const demand = [
      ask('a', 'run', { requestedAt: 0, firstGrantAt: 10 }),
      ask('b', 'w1', { requestedAt: 400 }),
      ask('c', 'w2', { requestedAt: 900 }),
    ];

    // Act
    const stats = queueStats(state, demand, 1000);

    // Assess
    expect(stats).toEqual({ used: 2, queued: 2, oldestWaitMs: 600 });
  });
});
