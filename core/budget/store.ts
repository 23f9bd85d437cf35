/**
 * Worker grants: who may run how many workers right now, kept in the job table so that any process can
 * grant (the split, a finalize, a worker leaving, the reaper) — concurrently, idempotently, with no
 * scheduler in memory — and a crash loses nothing.
 *
 * **Items** (partition `BUDGET`, one per stage's table):
 * - `BUDGET` / `STAGE` — the budget item: `version`, `used` (workers held) and `holders`, a map from
 *   `<site>#<token>` to `{ h: held, t: target, g: last grant (epoch ms) }` for every job holding workers or
 *   due some. Every grant, leave and release is one conditional write of this one item, so the budget can
 *   never be passed by any interleaving: a pass replaces the map only if `version` is still the one it read
 *   (optimistic concurrency); a release or leave decrements in place under a condition and bumps `version`.
 * - `BUDGET` / `DEMAND#<site>#<token>` — a job that wants workers: arrival, request time, records left, the
 *   most workers it can use, and when it got its first one. Written when the job asks, deleted when it ends.
 *
 * Why one item and not per-slot items or transactions: DynamoDB transactions are not in dynalite (the local
 * runtime and the tests would not run them); per-slot items make "how many does job X hold" a read of every
 * slot, and "exactly (held − target) workers leave" a multi-item race. One item makes every rule a single
 * conditional write. Its cost: writes are billed by item size (about 60 bytes per holder, so ~12 KB ≈ 12 WCU
 * at 200 workers) and one item takes ~1,000 WCU/s — dozens of grant writes per second, far above the rate at
 * which jobs arrive and workers leave. Both partition items are strongly readable with one Query.
 *
 * **Crashes.** A pass writes its grants first, then launches. A granter that dies in between leaves grants
 * without tasks: {@link GrantStore.reconcile} (each reaper pass) gives back every held place that has no live
 * task once its grant is older than the start grace. A worker killed without leaving is found the same way.
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoClient } from '../aws/clients.ts';
import { TABLE_PARTITIONS } from '../../config/names.ts';
import { allocate, jobKey, queueOrder, type BudgetPolicy } from './policy.ts';
import {
  demandOf,
  EMPTY_BUDGET,
  grantIfAsked,
  mustShed,
  planPass,
  planReconcile,
  type BudgetState,
  type Demand,
  type Grant,
  type Holding,
  type LeaveDecision,
} from './plan.ts';
import { LaunchFailedError, type TaskInfo, type TaskLauncher } from '../aws/task-launcher.ts';
import {
  isConditionFailure,
  queryItems,
  unlessConditionFails,
  updateIf,
  type TableRef,
} from '../shared/dynamo.ts';

export interface PassOptions {
  readonly launcher: TaskLauncher;
  /**
   * Called before a job's granted workers are launched: make the job RUNNING if it is QUEUED (whatever
   * `first` says: a first grant whose launch was lost is granted again). False means the job wants no
   * workers any more (it ended meanwhile): its demand and places are dropped instead.
   */
  readonly beforeLaunch?: (g: Grant) => Promise<boolean>;
  /**
   * Launches a grant's workers instead of `launcher.launch`, answering how many started (the store gives the
   * rest of the places back; the job keeps asking). @default `launcher.launch`, all or nothing
   */
  readonly launch?: (g: Grant) => Promise<number>;
  /** @default Date.now */
  readonly now?: () => number;
  /** Passes retried after losing a race to another granter. @default 12 */
  readonly maxAttempts?: number;
}

export interface PassReport {
  /** Writes lost to concurrent granters before this pass's decision held (or gave up). */
  readonly conflicts: number;
  /** The pass could not write within its attempts (every attempt lost a race); the next pass will grant. */
  readonly gaveUp: boolean;
  readonly granted: Grant[];
  /** Grants whose launch failed or was refused by `beforeLaunch`; their places were given back. */
  readonly notLaunched: { site: string; token: string; count: number; error?: string }[];
  /** Workers held after the pass (unknown when it gave up). */
  readonly used?: number;
  /** Jobs asking for workers and holding none after the pass (unknown when it gave up). */
  readonly queued?: number;
}

export interface GrantStatus {
  readonly held: number;
  readonly target: number;
  /** 1 = next to get a worker; only for a job that wants workers and holds none. */
  readonly position?: number;
  /** Jobs waiting for their first worker, stage-wide. */
  readonly queued: number;
}

/** The budget's partition of the table (tests give each scenario its own). */
export const BUDGET_PARTITION = TABLE_PARTITIONS.budget;
const BUDGET_SK = 'STAGE';
const DEMAND_PREFIX = 'DEMAND#';
const demandSk = (site: string, token: string) => `${DEMAND_PREFIX}${site}#${token}`;

interface StoredHolding {
  h: number;
  t: number;
  g: number;
}

const backoff = (attempt: number) => sleep(Math.min(500, 10 * 2 ** attempt) * (0.5 + Math.random()));

/** The grant store on the job table. */
export class GrantStore {
  constructor(
    private readonly table: string,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
    private readonly partition: string = BUDGET_PARTITION,
  ) {}

  private get ref(): TableRef {
    return { table: this.table, ddb: this.ddb };
  }

  /** What the budget item says a job (by jobKey) holds; `consistent` for a read before a conditional write. */
  private async holding(key: string, consistent: boolean): Promise<StoredHolding | undefined> {
    const r = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: this.partition, sk: BUDGET_SK },
        ProjectionExpression: 'holders.#j',
        ExpressionAttributeNames: { '#j': key },
        ...(consistent ? { ConsistentRead: true } : {}),
      }),
    );
    return (r.Item?.holders as Record<string, StoredHolding> | undefined)?.[key];
  }

  /** A job asks for workers (idempotent: a repeated request keeps its first request time). */
  async request(d: Omit<Demand, 'firstGrantAt' | 'requestedAt'> & { requestedAt?: number }): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: this.partition, sk: demandSk(d.site, d.token) },
        UpdateExpression:
          'SET site = :site, #token = :token, arrivedAt = if_not_exists(arrivedAt, :arrived), ' +
          'requestedAt = if_not_exists(requestedAt, :requested), remaining = :remaining, maxWorkers = :max',
        ExpressionAttributeNames: { '#token': 'token' },
        ExpressionAttributeValues: {
          ':site': d.site,
          ':token': d.token,
          ':arrived': d.arrivedAt,
          ':requested': d.requestedAt ?? Date.now(),
          ':remaining': d.remaining,
          ':max': d.maxWorkers,
        },
      }),
    );
  }

  /** Updates what a job still needs (records left, workers it can use); no-op for a job that asked for none. */
  async refresh(site: string, token: string, d: Pick<Demand, 'remaining' | 'maxWorkers'>): Promise<boolean> {
    const r = await updateIf(
      this.ref,
      { pk: this.partition, sk: demandSk(site, token) },
      {
        UpdateExpression: 'SET remaining = :remaining, maxWorkers = :max',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':remaining': d.remaining, ':max': d.maxWorkers },
      },
    );
    return r !== undefined;
  }

  /** The budget item and every job's demand, in one strongly consistent Query of the budget partition. */
  async read(consistent = true): Promise<{ state: BudgetState; demand: Demand[] }> {
    let state: BudgetState = EMPTY_BUDGET;
    const demand: Demand[] = [];
    const items = queryItems(this.ref, {
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': this.partition },
      ConsistentRead: consistent,
    });
    for await (const item of items) {
      if (item.sk === BUDGET_SK) state = toState(item);
      else if (String(item.sk).startsWith(DEMAND_PREFIX)) demand.push(toDemand(item));
    }
    return { state, demand };
  }

  /**
   * One granter pass: reads the demand, computes targets and grants (core/budget/policy.ts), writes them with
   * one conditional write of the budget item, then launches what it granted. A pass that loses the race to
   * another granter reads again and decides again; one that finds nothing to change writes nothing.
   */
  async pass(policy: BudgetPolicy, o: PassOptions): Promise<PassReport> {
    const clock = o.now ?? Date.now;
    const attempts = o.maxAttempts ?? 12;
    let conflicts = 0;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const { state, demand } = await this.read();
      const now = clock();
      const plan = planPass(policy, state, demand, now);
      if (plan.changed && !(await this.writeHolders(state.version, plan.holders))) {
        conflicts++;
        await backoff(attempt);
        continue;
      }
      const firsts = plan.grants.filter((g) => g.first);
      await Promise.all(firsts.map((g) => this.markFirstGrant(g.site, g.token, now)));
      const notLaunched = (await Promise.all(plan.grants.map((g) => this.launch(g, o)))).flat();
      return {
        conflicts,
        gaveUp: false,
        granted: plan.grants,
        notLaunched,
        used: plan.used - notLaunched.reduce((n, f) => n + f.count, 0),
        queued: plan.queued,
      };
    }
    return { conflicts, gaveUp: true, granted: [], notLaunched: [] };
  }

  private async launch(g: Grant, o: PassOptions): Promise<PassReport['notLaunched']> {
    let started: number;
    let error = 'refused';
    try {
      if (o.beforeLaunch && !(await o.beforeLaunch(g))) {
        await this.finish(g.site, g.token);
        return [{ site: g.site, token: g.token, count: g.count, error: 'the job wants no workers any more' }];
      }
      if (o.launch) started = await o.launch(g);
      else {
        await o.launcher.launch({ site: g.site, token: g.token, count: g.count });
        started = g.count;
      }
    } catch (err) {
      started = err instanceof LaunchFailedError ? err.started.length : 0;
      error = err instanceof Error ? err.message : String(err);
    }
    if (started >= g.count) return [];
    // The places of the workers that did not start go back; the job stays asking, the next pass grants again.
    await this.release(g.site, g.token, g.count - started);
    return [{ site: g.site, token: g.token, count: g.count - started, error }];
  }

  /** A refused launch: no new workers for the job before `notBefore` (epoch ms); a no-op for one that asks none. */
  async defer(site: string, token: string, notBefore: number): Promise<void> {
    await unlessConditionFails(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: this.partition, sk: demandSk(site, token) },
          UpdateExpression: 'SET notBefore = :t',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':t': notBefore },
        }),
      ),
    );
  }

  /**
   * Between receives, a worker asks whether to go: when its job holds more workers than its target (or than
   * `usable`, the chunks it has left), exactly that many of its workers get 'leave' — each such answer has
   * already given its place back (one conditional decrement, so two workers asking at once cannot both
   * leave when one should). One eventually consistent read when the answer is 'stay'.
   */
  async shouldLeave(site: string, token: string, usable?: number): Promise<LeaveDecision> {
    const key = jobKey(site, token);
    const seen = await this.leaveDue(site, token, usable);
    if (seen !== 'leave') return seen;
    const values: Record<string, unknown> = { ':one': 1 };
    let condition = 'holders.#j.h > holders.#j.t';
    if (usable !== undefined) {
      values[':usable'] = usable;
      condition = `(${condition} OR holders.#j.h > :usable)`;
    }
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: this.partition, sk: BUDGET_SK },
          UpdateExpression:
            'SET holders.#j.h = holders.#j.h - :one, used = used - :one, version = version + :one',
          ConditionExpression: `${condition} AND holders.#j.h >= :one`,
          ExpressionAttributeNames: { '#j': key },
          ExpressionAttributeValues: values,
        }),
      );
      // Fewer chunks left than workers: the job asks for no more than that from now on, so the next pass
      // does not hand the place straight back to it.
      if (usable !== undefined) await this.lowerDemand(site, token, usable);
      return 'leave';
    } catch (err) {
      if (isConditionFailure(err)) return 'stay';
      throw err;
    }
  }

  /**
   * Whether one of the job's workers is due to leave (read only, eventually consistent): 'leave' when the job
   * holds more than its target (or `usable`), 'unheld' when it holds nothing. A worker that hears 'leave'
   * finishes the chunks in hand first and only then gives its place back ({@link shouldLeave}), so the place is
   * never granted again while it still works: the budget is never passed, even for a moment.
   */
  async leaveDue(site: string, token: string, usable?: number): Promise<LeaveDecision> {
    const stored = await this.holding(jobKey(site, token), false);
    if (!stored || stored.h <= 0) return 'unheld';
    return mustShed(fromStored(stored), usable) ? 'leave' : 'stay';
  }

  /** Gives back `count` places of a job (a worker exiting idle, a launch that failed). */
  async release(site: string, token: string, count = 1): Promise<boolean> {
    const r = await updateIf(
      this.ref,
      { pk: this.partition, sk: BUDGET_SK },
      {
        UpdateExpression: 'SET holders.#j.h = holders.#j.h - :n, used = used - :n, version = version + :one',
        ConditionExpression: 'holders.#j.h >= :n',
        ExpressionAttributeNames: { '#j': jobKey(site, token) },
        ExpressionAttributeValues: { ':n': count, ':one': 1 },
      },
    );
    return r !== undefined;
  }

  /**
   * A job ended: its demand is deleted first (so no pass grants it again), then every place it holds is
   * given back. A crash between the two leaves places that reconciliation returns. Returns places released.
   */
  async finish(site: string, token: string): Promise<number> {
    await this.ddb.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: this.partition, sk: demandSk(site, token) } }),
    );
    const key = jobKey(site, token);
    for (let attempt = 0; attempt < 12; attempt++) {
      const stored = await this.holding(key, true);
      if (!stored) return 0;
      try {
        await this.ddb.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: this.partition, sk: BUDGET_SK },
            UpdateExpression: 'REMOVE holders.#j SET used = used - :h, version = version + :one',
            ConditionExpression: 'holders.#j.h = :h',
            ExpressionAttributeNames: { '#j': key },
            ExpressionAttributeValues: { ':h': stored.h, ':one': 1 },
          }),
        );
        return stored.h;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
        await backoff(attempt);
      }
    }
    return 0;
  }

  /**
   * Brings every job's held places down to its live tasks (`tasks`, listed at `listedAt`), except grants
   * younger than `graceMs`: what a granter that died between its write and its launch, or a worker killed
   * without leaving, would otherwise hold forever. Returns the places given back, and the jobs (by jobKey) whose
   * places those were: jobs whose workers died.
   */
  async reconcile(
    tasks: readonly TaskInfo[],
    listedAt: number,
    graceMs: number,
  ): Promise<{ released: number; jobs: string[] }> {
    for (let attempt = 0; attempt < 12; attempt++) {
      const { state } = await this.read();
      const plan = planReconcile(state, tasks, listedAt, graceMs);
      if (plan.released === 0) return { released: 0, jobs: [] };
      if (await this.writeHolders(state.version, plan.holders))
        return { released: plan.released, jobs: plan.jobs };
      await backoff(attempt);
    }
    return { released: 0, jobs: [] };
  }

  /**
   * Workers a job of `site` asking now would be granted (plan.ts grantIfAsked): one eventually consistent Query of
   * the budget partition, nothing written (the check's estimate).
   */
  async wouldGrant(
    policy: BudgetPolicy,
    ask: Pick<Demand, 'site' | 'remaining' | 'maxWorkers'>,
    now = Date.now(),
  ): Promise<number> {
    const { state, demand } = await this.read(false);
    return grantIfAsked(policy, state, demand, ask, now);
  }

  /** What the job view shows: workers held and due, and the job's place in the queue. */
  async status(policy: BudgetPolicy, site: string, token: string): Promise<GrantStatus> {
    const { state, demand } = await this.read(false);
    const jobs = demandOf(state, demand);
    const key = jobKey(site, token);
    const h = state.holders[key];
    const order = queueOrder(policy, jobs);
    const i = order.indexOf(key);
    return {
      held: h?.held ?? 0,
      target: allocate(policy, jobs).targets.get(key) ?? 0,
      ...(i >= 0 ? { position: i + 1 } : {}),
      queued: order.length,
    };
  }

  private lowerDemand(site: string, token: string, maxWorkers: number): Promise<void> {
    return this.updateDemand(site, token, 'SET maxWorkers = :max', 'maxWorkers > :max', {
      ':max': maxWorkers,
    });
  }

  private markFirstGrant(site: string, token: string, now: number): Promise<void> {
    return this.updateDemand(site, token, 'SET firstGrantAt = if_not_exists(firstGrantAt, :now)', undefined, {
      ':now': now,
    });
  }

  /** Updates a job's demand if it still exists (and `condition` holds); a job gone meanwhile is no error. */
  private async updateDemand(
    site: string,
    token: string,
    update: string,
    condition: string | undefined,
    values: Record<string, unknown>,
  ): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: this.partition, sk: demandSk(site, token) },
          UpdateExpression: update,
          ConditionExpression: condition ? `attribute_exists(pk) AND ${condition}` : 'attribute_exists(pk)',
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** Replaces the holders if the budget item is still at `version`; false when another writer came first. */
  private async writeHolders(version: number, holders: Record<string, Holding>): Promise<boolean> {
    const stored: Record<string, StoredHolding> = {};
    let used = 0;
    for (const [k, h] of Object.entries(holders)) {
      stored[k] = { h: h.held, t: h.target, g: h.grantedAt };
      used += h.held;
    }
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.partition, sk: BUDGET_SK, version: version + 1, used, holders: stored },
          ConditionExpression: version === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
          ...(version === 0 ? {} : { ExpressionAttributeValues: { ':v': version } }),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}

function fromStored(s: StoredHolding): Holding {
  return { held: Number(s.h), target: Number(s.t), grantedAt: Number(s.g) };
}

function toState(item: Record<string, unknown>): BudgetState {
  const holders: Record<string, Holding> = {};
  for (const [k, v] of Object.entries((item.holders ?? {}) as Record<string, StoredHolding>)) {
    holders[k] = fromStored(v);
  }
  return { version: Number(item.version ?? 0), holders };
}

function toDemand(item: Record<string, unknown>): Demand {
  return {
    site: String(item.site),
    token: String(item.token),
    arrivedAt: Number(item.arrivedAt),
    requestedAt: Number(item.requestedAt),
    remaining: Number(item.remaining),
    maxWorkers: Number(item.maxWorkers),
    ...(item.firstGrantAt !== undefined ? { firstGrantAt: Number(item.firstGrantAt) } : {}),
    ...(item.notBefore !== undefined ? { notBefore: Number(item.notBefore) } : {}),
  };
}
