import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../../../core/aws/clients.ts';
import { allocate, jobKey, type BudgetPolicy } from '../../../../core/budget/policy.ts';
import { demandOf, type Demand } from '../../../../core/budget/plan.ts';
import { GrantStore } from '../../../../core/budget/store.ts';
import type { LaunchRequest, TaskInfo, TaskLauncher } from '../../../../core/aws/task-launcher.ts';
import { newJobToken } from '../../../../core/jobs/keys.ts';
import { RecordingLauncher, useTestAws } from '../../../helpers/aws.ts';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { tableDefinition } from '../../../../core/jobs/table.ts';

const aws = useTestAws();
let table: string;
let grants: GrantStore;
let tables = 0;

/** Each test gets its own table: the budget partition is stage-wide. */
beforeEach(async () => {
  table = `${aws.table}-g${++tables}`;
  await dynamoClient().send(new CreateTableCommand(tableDefinition(table)));
  grants = new GrantStore(table);
});

const T0 = 1_800_000_000_000;

/** A job of `site` asking for up to `maxWorkers` workers. */
async function ask(
  site: string,
  o: { maxWorkers?: number; remaining?: number; arrivedAt?: number; store?: GrantStore } = {},
): Promise<string> {
  const token = newJobToken();
  await (o.store ?? grants).request({
    site,
    token,
    arrivedAt: o.arrivedAt ?? T0,
    requestedAt: o.arrivedAt ?? T0,
    remaining: o.remaining ?? 1000,
    maxWorkers: o.maxWorkers ?? 10,
  });
  return token;
}

const launchedFor = (l: RecordingLauncher, token: string) =>
  l.launches.filter((x) => x.token === token).reduce((n, x) => n + x.count, 0);

const bySite = (l: RecordingLauncher) => {
  const out: Record<string, number> = {};
  for (const x of l.launches) out[x.site] = (out[x.site] ?? 0) + x.count;
  return out;
};

describe('Class: GrantStore', () => {
  it('splits the budget fairly among sites and launches exactly what it granted', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 12 };
    await ask('sakai', { maxWorkers: 10, arrivedAt: T0 });
    await ask('kobe', { maxWorkers: 10, arrivedAt: T0 + 1 });
    await ask('nara', { maxWorkers: 2, arrivedAt: T0 + 2 });
    await ask('nara', { maxWorkers: 10, arrivedAt: T0 + 3, remaining: 50_000 });
    const launcher = new RecordingLauncher();

    // Act
    const report = await grants.pass(policy, { launcher, now: () => T0 + 10 });

    // Assess
    expect(bySite(launcher)).toEqual({ sakai: 4, kobe: 4, nara: 4 });
    expect(report).toMatchObject({ used: 12, queued: 0, gaveUp: false, notLaunched: [] });
    const { state } = await grants.read();
    expect(Object.values(state.holders).reduce((n, h) => n + h.held, 0)).toBe(12);
  });

  it('never passes a site cap; what the capped site cannot take goes to the others', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 12, sites: { sakai: { maxWorkers: 2 } } };
    await ask('sakai', { maxWorkers: 10 });
    await ask('kobe', { maxWorkers: 10 });
    await ask('nara', { maxWorkers: 10 });
    const launcher = new RecordingLauncher();

    // Act
    await grants.pass(policy, { launcher });

    // Assess
    expect(bySite(launcher)).toEqual({ sakai: 2, kobe: 5, nara: 5 });
  });

  it('queues jobs it cannot serve with a visible position, and serves them as places come back', async () => {
    // Prepare: a budget of 2, four one-worker jobs of four sites.
    const policy: BudgetPolicy = { maxWorkers: 2 };
    const tokens: [string, string][] = [];
    for (const [i, site] of ['sakai', 'kobe', 'nara', 'kyoto'].entries()) {
      tokens.push([site, await ask(site, { maxWorkers: 1, arrivedAt: T0 + i })]);
    }
    const launcher = new RecordingLauncher();

    // Act
    const first = await grants.pass(policy, { launcher });
    const waiting = await Promise.all(tokens.map(([s, t]) => grants.status(policy, s, t)));
    const released = await grants.finish(tokens[0]![0], tokens[0]![1]);
    await grants.pass(policy, { launcher });
    const after = await grants.status(policy, tokens[3]![0], tokens[3]![1]);

    // Assess
    expect(first).toMatchObject({ used: 2, queued: 2 });
    expect(waiting.map((w) => [w.held, w.position])).toEqual([
      [1, undefined],
      [1, undefined],
      [0, 1],
      [0, 2],
    ]);
    expect(released).toBe(1);
    expect(launcher.launches.map((l) => l.site).sort()).toEqual(['kobe', 'nara', 'sakai']);
    expect(after).toMatchObject({ held: 0, position: 1, queued: 1 });
  });

  it('releases a finished job: its places return, and no later pass grants it again', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 4 };
    const token = await ask('sakai', { maxWorkers: 4 });
    const launcher = new RecordingLauncher();
    await grants.pass(policy, { launcher });

    // Act
    const released = await grants.finish('sakai', token);
    const again = await grants.finish('sakai', token);
    const report = await grants.pass(policy, { launcher });

    // Assess
    expect(released).toBe(4);
    expect(again).toBe(0);
    expect(report.granted).toEqual([]);
    expect(launchedFor(launcher, token)).toBe(4);
    expect((await grants.read()).state.holders).toEqual({});
  });

  it('shrinks a job whose share fell: exactly (held − target) of its workers are told to leave', async () => {
    // Prepare: sakai holds the whole budget, then kobe asks.
    const policy: BudgetPolicy = { maxWorkers: 4 };
    const big = await ask('sakai', { maxWorkers: 4, remaining: 200_000 });
    const launcher = new RecordingLauncher();
    await grants.pass(policy, { launcher });
    const small = await ask('kobe', { maxWorkers: 2, remaining: 20 });
    const blocked = await grants.pass(policy, { launcher });

    // Act: sakai's four workers ask at once between receives.
    const decisions = await Promise.all([1, 2, 3, 4].map(() => grants.shouldLeave('sakai', big)));
    const afterLeaving = await grants.pass(policy, { launcher });

    // Assess
    expect(blocked.granted).toEqual([]);
    expect(decisions.filter((d) => d === 'leave')).toHaveLength(2);
    expect(decisions.filter((d) => d === 'stay')).toHaveLength(2);
    expect(afterLeaving.granted).toMatchObject([{ site: 'kobe', token: small, count: 2, first: true }]);
    expect(afterLeaving.used).toBe(4);
    expect(await grants.shouldLeave('kobe', small)).toBe('stay');
    expect(await grants.shouldLeave('kobe', newJobToken())).toBe('unheld');
  });

  it('lets a worker go when its job has fewer chunks left than workers', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 4 };
    const token = await ask('sakai', { maxWorkers: 4 });
    await grants.pass(policy, { launcher: new RecordingLauncher() });

    // Act
    const decisions = await Promise.all([1, 2, 3, 4].map(() => grants.shouldLeave('sakai', token, 1)));

    // Assess: three leave, and the job asks for one worker from now on (no place handed straight back).
    expect(decisions.filter((d) => d === 'leave')).toHaveLength(3);
    expect((await grants.read()).demand).toMatchObject([{ token, maxWorkers: 1 }]);
    expect((await grants.pass(policy, { launcher: new RecordingLauncher() })).granted).toEqual([]);
  });

  it('gives the places of a launch that failed back, and grants them again on the next pass', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 3 };
    const token = await ask('sakai', { maxWorkers: 3 });
    const failing: TaskLauncher = {
      launch: () => Promise.reject(new Error('RunTask failed: capacity')),
      stop: () => Promise.resolve(0),
      list: () => Promise.resolve([]),
    };
    const launcher = new RecordingLauncher();

    // Act
    const failed = await grants.pass(policy, { launcher: failing });
    const retried = await grants.pass(policy, { launcher });

    // Assess
    expect(failed.notLaunched).toMatchObject([{ token, count: 3, error: 'RunTask failed: capacity' }]);
    expect(failed.used).toBe(0);
    expect(retried.granted).toMatchObject([{ token, count: 3, first: false }]);
    expect(launchedFor(launcher, token)).toBe(3);
  });

  it('drops the demand of a job that ended before its launch (beforeLaunch says no)', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 3 };
    const token = await ask('sakai', { maxWorkers: 3 });
    const launcher = new RecordingLauncher();

    // Act
    const report = await grants.pass(policy, { launcher, beforeLaunch: () => Promise.resolve(false) });
    const { state, demand } = await grants.read();

    // Assess
    expect(report.notLaunched).toMatchObject([{ token, count: 3 }]);
    expect(launcher.launches).toEqual([]);
    expect(state.holders).toEqual({});
    expect(demand).toEqual([]);
  });

  it('a granter that dies between its writes leaks nothing: reconciliation returns the places', async () => {
    // Prepare: the granter's client fails every write after the budget write (the process "dies" there).
    const policy: BudgetPolicy = { maxWorkers: 4 };
    const token = await ask('sakai', { maxWorkers: 4 });
    const real = dynamoClient();
    let budgetWritten = false;
    const dying = {
      send: (cmd: unknown) => {
        if (budgetWritten) return Promise.reject(new Error('granter died'));
        if (cmd instanceof PutCommand) budgetWritten = true;
        return real.send(cmd as PutCommand);
      },
    } as unknown as DynamoDBDocumentClient;
    const launcher = new RecordingLauncher();

    // Act
    const died = await new GrantStore(table, dying)
      .pass(policy, { launcher, now: () => T0 })
      .catch((err: unknown) => err);
    const blocked = await grants.pass(policy, { launcher, now: () => T0 + 1000 });
    const early = (await grants.reconcile([], T0 + 60_000, 180_000)).released;
    const late = (await grants.reconcile([], T0 + 181_000, 180_000)).released;
    const regranted = await grants.pass(policy, { launcher, now: () => T0 + 182_000 });

    // Assess
    expect((died as Error).message).toBe('granter died');
    expect(launcher.launches).toHaveLength(1);
    expect(blocked.granted).toEqual([]);
    expect(blocked.used).toBe(4);
    expect(early).toBe(0);
    expect(late).toBe(4);
    expect(regranted.granted).toMatchObject([{ token, count: 4 }]);
  });

  it('a job that ends while its finish dies half-way leaks nothing either', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 2 };
    const token = await ask('sakai', { maxWorkers: 2 });
    const other = await ask('kobe', { maxWorkers: 2, arrivedAt: T0 + 1 });
    await grants.pass(policy, { launcher: new RecordingLauncher(), now: () => T0 });
    const real = dynamoClient();
    const dying = {
      send: (cmd: unknown) =>
        cmd instanceof UpdateCommand
          ? Promise.reject(new Error('died after deleting the demand'))
          : real.send(cmd as UpdateCommand),
    } as unknown as DynamoDBDocumentClient;
    const launcher = new RecordingLauncher();

    // Act
    const died = await new GrantStore(table, dying).finish('sakai', token).catch((err: unknown) => err);
    const stillHeld = await grants.pass(policy, { launcher, now: () => T0 + 1000 });
    const tasks: TaskInfo[] = [{ id: 'k1', site: 'kobe', token: other }];
    await grants.reconcile(tasks, T0 + 200_000, 180_000);
    const after = await grants.pass(policy, { launcher, now: () => T0 + 200_001 });

    // Assess: sakai's place stayed held (its target 0) until reconciliation; then kobe got it.
    expect((died as Error).message).toBe('died after deleting the demand');
    expect(stillHeld.granted).toEqual([]);
    expect(after.granted).toMatchObject([{ site: 'kobe', token: other, count: 1 }]);
    expect(Object.keys((await grants.read()).state.holders)).toEqual([jobKey('kobe', other)]);
  });

  it('reconciliation gives back the place of a killed worker, never that of a live one', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 6 };
    const token = await ask('sakai', { maxWorkers: 3 });
    await grants.pass(policy, { launcher: new RecordingLauncher(), now: () => T0 });
    const live: TaskInfo[] = [
      { id: 't1', site: 'sakai', token },
      { id: 't2', site: 'sakai', token },
    ];

    // Act
    const released = (await grants.reconcile(live, T0 + 200_000, 180_000)).released;
    const again = (await grants.reconcile(live, T0 + 300_000, 180_000)).released;

    // Assess
    expect(released).toBe(1);
    expect(again).toBe(0);
    expect((await grants.read()).state.holders[jobKey('sakai', token)]).toMatchObject({ held: 2, target: 3 });
  });

  it('20 granters at once never grant more than the budget, and end at the fair allocation', async () => {
    // Prepare: 30 jobs of 6 sites; every budget write is watched.
    const policy: BudgetPolicy = { maxWorkers: 10, sites: { s1: { weight: 2 } } };
    const real = dynamoClient();
    const writtenUsed: number[] = [];
    const watching = {
      send: async (cmd: unknown) => {
        const out = await real.send(cmd as PutCommand);
        if (cmd instanceof PutCommand) writtenUsed.push(Number(cmd.input.Item?.used));
        return out;
      },
    } as unknown as DynamoDBDocumentClient;
    for (let i = 0; i < 30; i++) {
      await ask(`s${i % 6}`, { maxWorkers: 1 + (i % 4), remaining: 100 * (i + 1), arrivedAt: T0 + i });
    }
    const launcher = new RecordingLauncher();

    // Act
    const reports = await Promise.all(
      Array.from({ length: 20 }, () => new GrantStore(table, watching).pass(policy, { launcher })),
    );

    // Assess
    const { state, demand } = await grants.read();
    const launched = launcher.launches.reduce((n, l) => n + l.count, 0);
    expect(reports.every((r) => !r.gaveUp)).toBe(true);
    expect(Math.max(...writtenUsed)).toBeLessThanOrEqual(10);
    expect(launched).toBe(10);
    const fair = allocate(policy, demandOf(state, demand)).targets;
    for (const d of demand as Demand[]) {
      const key = jobKey(d.site, d.token);
      expect(launchedFor(launcher, d.token)).toBe(state.holders[key]?.held ?? 0);
      expect(state.holders[key]?.held ?? 0).toBe(fair.get(key));
    }
  });

  it('grants concurrently with workers leaving and jobs ending, and never passes the budget', async () => {
    // Prepare
    const policy: BudgetPolicy = { maxWorkers: 8 };
    const tokens: [string, string][] = [];
    for (let i = 0; i < 12; i++) {
      const site = `s${i % 4}`;
      tokens.push([site, await ask(site, { maxWorkers: 1 + (i % 3), arrivedAt: T0 + i })]);
    }
    const launcher = new CountingLauncher();
    await grants.pass(policy, { launcher });

    // Act: rounds of passes, leaves and finishes, all at once.
    for (let round = 0; round < 4; round++) {
      const [site, token] = tokens[round]!;
      await Promise.all([
        ...Array.from({ length: 6 }, () => new GrantStore(table).pass(policy, { launcher })),
        grants.finish(site, token).then((n) => launcher.stopped(site, token, n)),
        ...tokens.slice(4).map(([s, t]) =>
          grants.shouldLeave(s, t, 1).then((d) => {
            if (d === 'leave') launcher.stopped(s, t, 1);
          }),
        ),
      ]);
      const { state } = await grants.read();
      const held = Object.values(state.holders).reduce((n, h) => n + h.held, 0);
      // Assess (every round): places held never pass the budget and always match the live workers.
      expect(held).toBeLessThanOrEqual(8);
      expect(launcher.alive()).toBe(held);
    }
  });
});

/** Counts live workers per job: launches add, leaves and finishes take away. */
class CountingLauncher implements TaskLauncher {
  private readonly live = new Map<string, number>();

  launch(req: LaunchRequest): Promise<string[]> {
    const k = jobKey(req.site, req.token);
    this.live.set(k, (this.live.get(k) ?? 0) + req.count);
    return Promise.resolve([]);
  }

  stopped(site: string, token: string, n: number): void {
    const k = jobKey(site, token);
    this.live.set(k, (this.live.get(k) ?? 0) - n);
  }

  alive(): number {
    return [...this.live.values()].reduce((a, b) => a + b, 0);
  }

  stop(): Promise<number> {
    return Promise.resolve(0);
  }

  list(): Promise<TaskInfo[]> {
    return Promise.resolve([]);
  }
}
