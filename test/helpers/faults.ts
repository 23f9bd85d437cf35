/**
 * Fault injection for whole jobs run in this process on the embedded emulators: a seeded random source,
 * wrappers that put faults around any method of the pipeline's injected adapters (`objects`, `queues`,
 * `jobs`), a worker "life" that can be killed at any point, and a harness that runs a job the way the
 * deployed system does — split, a fleet of row workers, finalize as the finalize queue delivers, the reaper
 * as the backstop — until the job ends or is declared stuck.
 */
import { createHash, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateQueueCommand, type Message } from '@aws-sdk/client-sqs';
import { loadConfig } from '../../config/index.ts';
import { sqsClient } from '../../core/aws/clients.ts';
import { decodeChunk, type ChunkMessage } from '../../core/messages/chunk.ts';
import { finalizeJob, type FinalizeResult } from '../../core/finalize/finalize.ts';
import type { Job } from '../../core/jobs/store.ts';
import { startDirectJob } from '../../core/intake/operations.ts';
import {
  LaunchFailedError,
  type LaunchRequest,
  type TaskInfo,
  type TaskLauncher,
} from '../../core/aws/task-launcher.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { reap } from '../../core/reaper/reaper.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { addDays, localDay } from '../../core/usage/days.ts';
import { NO_USAGE, usageStoreOf, type UsageFigures } from '../../core/usage/store.ts';
import { MAX_CHUNK_ATTEMPTS, runWorker, type WorkerSummary } from '../../core/work/worker.ts';

// ---------------------------------------------------------------------------------------------------------
// Seeds

/** A small, fast, seedable PRNG (mulberry32): the same seed draws the same fault plan. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** In [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from nothing');
    return xs[this.int(0, xs.length - 1)]!;
  }
  /** k distinct elements, in random order. */
  sample<T>(xs: readonly T[], k: number): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, Math.min(k, a.length));
  }
}

/** The run's seed: FAULT_SEED when set (to replay a failure), else a fresh one. */
export function faultSeed(): number {
  const env = process.env.FAULT_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) throw new Error(`FAULT_SEED must be a whole number ≥ 0, got "${env}"`);
    return n;
  }
  return randomInt(0, 2 ** 31);
}

/** An independent random source per test (a test's draws do not shift when another test changes). */
export function rngFor(seed: number, label: string): Rng {
  return new Rng(createHash('sha1').update(`${seed}:${label}`).digest().readUInt32BE(0));
}

// ---------------------------------------------------------------------------------------------------------
// Errors and interception

/** What a storage call fails with when a fault is injected (a server-side, retryable AWS error). */
export class InjectedFault extends Error {
  override readonly name = 'InternalError';
  readonly $fault = 'server';
  readonly $retryable = { throttling: false };
}

/** What every call of a killed worker fails with. */
export class KilledError extends Error {
  override readonly name = 'KilledError';
}

type Fn = (...args: never[]) => unknown;
type Methods<T> = { [K in keyof T]: T[K] extends Fn ? K : never }[keyof T];
/** Replaces a method: gets the original call (bound to its arguments) and the arguments. */
export type Around<T> = {
  [K in Methods<T>]?: T[K] extends (...args: infer A) => infer R ? (call: () => R, ...args: A) => R : never;
};

export interface InterceptOptions<T> {
  readonly around?: Around<T>;
  /** Runs before every asynchronous call (a delay, or a throw for a dead process). */
  readonly before?: (method: string) => void | Promise<void>;
}

/** Methods that return at once (not a promise): `before` does not apply to them. */
const SYNC_METHODS = new Set(['multipart']);

/** `target` with faults around its methods (a Proxy: everything else reads through to the real object). */
export function intercept<T extends object>(target: T, o: InterceptOptions<T>): T {
  return new Proxy(target, {
    get(t, p) {
      const v: unknown = Reflect.get(t, p, t);
      if (typeof v !== 'function' || typeof p !== 'string') return v;
      const fn = v as (...args: unknown[]) => unknown;
      const around = (
        o.around as Record<string, ((call: () => unknown, ...a: unknown[]) => unknown) | undefined>
      )?.[p];
      return (...args: unknown[]) => {
        const call = () => fn.apply(t, args);
        const run = () => (around ? around(call, ...args) : call());
        if (!o.before || SYNC_METHODS.has(p)) return run();
        return (async () => {
          await o.before!(p);
          return run();
        })();
      };
    },
  });
}

/** The deps with the three adapters replaced (each defaults to the original). */
export function withAdapters(
  deps: PipelineDeps,
  o: {
    objects?: InterceptOptions<PipelineDeps['objects']>;
    queues?: InterceptOptions<PipelineDeps['queues']>;
    jobs?: InterceptOptions<PipelineDeps['jobs']>;
  },
): PipelineDeps {
  return {
    ...deps,
    objects: o.objects ? intercept(deps.objects, o.objects) : deps.objects,
    queues: o.queues ? intercept(deps.queues, o.queues) : deps.queues,
    jobs: o.jobs ? intercept(deps.jobs, o.jobs) : deps.jobs,
  };
}

/** The deps with every chunk received as past its last attempt (the worker gives each chunk up). */
export function pastLastAttempt<D extends PipelineDeps>(deps: D): D {
  return {
    ...deps,
    queues: intercept(deps.queues, {
      around: {
        receive: async (call) =>
          ((await call()) as Message[]).map((m) => ({
            ...m,
            Attributes: { ...m.Attributes, ApproximateReceiveCount: String(MAX_CHUNK_ATTEMPTS + 1) },
          })),
      },
    }),
  };
}

/** Random delays before every storage call, so concurrent callers interleave differently each run. */
export function jittered(deps: PipelineDeps, rng: Rng, maxMs: number): PipelineDeps {
  const before = () => sleep(rng.int(0, maxMs));
  return withAdapters(deps, { objects: { before }, queues: { before }, jobs: { before } });
}

// ---------------------------------------------------------------------------------------------------------
// Workers that die

/**
 * One worker "process". `die` is SIGKILL: from then on every storage call it makes fails, and its loop is
 * stopped; calls already on the wire still land, as they would. `held` is what it holds of the queue
 * (receipt handle → chunk), kept by {@link mortal}.
 */
export class WorkerLife {
  dead: string | undefined;
  ended = false;
  readonly held = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly onDeath: ((chunks: number[]) => void)[] = [];

  constructor(
    readonly index: number,
    readonly stop: AbortController,
  ) {}

  die(where: string): void {
    if (this.dead || this.ended) return;
    this.dead = where;
    this.lost([...this.held.values()]);
    this.stop.abort();
  }

  /** Chunks this worker received and will never settle (it died holding them). */
  lost(chunks: number[]): void {
    for (const f of this.onDeath) f(chunks);
  }

  /** Called with the chunks the worker held when it died. */
  whenDead(f: (chunks: number[]) => void): void {
    this.onDeath.push(f);
  }

  check(): void {
    if (this.dead) throw new KilledError(`worker ${this.index} was killed (${this.dead})`);
  }

  /** Runs `f` after `ms` unless the worker is gone by then. */
  later(ms: number, f: () => void): void {
    this.timers.push(
      setTimeout(() => {
        if (!this.ended) f();
      }, ms),
    );
  }

  end(): void {
    this.ended = true;
    for (const t of this.timers) clearTimeout(t);
  }
}

function chunkOf(body: string | undefined): number {
  try {
    return decodeChunk(body ?? '').chunk;
  } catch {
    return -1;
  }
}

/**
 * The deps of a worker that can die: every call fails once it is dead, and what it receives and deletes
 * from its job queue is tracked in `life.held`. `around` adds the test's own faults on top.
 */
export function mortal(
  deps: PipelineDeps,
  life: WorkerLife,
  around: {
    objects?: Around<PipelineDeps['objects']>;
    queues?: Around<PipelineDeps['queues']>;
    jobs?: Around<PipelineDeps['jobs']>;
  } = {},
): PipelineDeps {
  const before = () => life.check();
  const inner = withAdapters(deps, {
    objects: { around: around.objects },
    queues: { around: around.queues },
    jobs: { around: around.jobs },
  });
  return withAdapters(inner, {
    objects: { before },
    jobs: { before },
    queues: {
      before,
      around: {
        receive: async (call, url) => {
          const messages = await call();
          if (url === deps.env.finalizeQueueUrl) return messages;
          const chunks = messages.map((m) => chunkOf(m.Body));
          if (life.dead) {
            // Received by a process that is already gone: the messages wait out their visibility.
            life.lost(chunks);
            life.check();
          }
          messages.forEach((m, i) => life.held.set(m.ReceiptHandle!, chunks[i]!));
          return messages;
        },
        delete: async (call, _url, handle) => {
          await call();
          life.held.delete(handle);
        },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// The fleet

/**
 * A TaskLauncher whose "tasks" are runWorker loops in this process: stop() aborts them (SIGTERM). `refuse` says
 * how many tasks of a launch RunTask refuses (quota, capacity): those are not started, and the launch throws
 * LaunchFailedError naming the ones that were, as EcsTaskLauncher does.
 */
export class FleetLauncher implements TaskLauncher {
  /** Launches as far as they started (refused tasks left out). */
  readonly launches: LaunchRequest[] = [];
  readonly stops: { site: string; token: string }[] = [];
  /** Every launch asked for, with how many of its tasks were refused. */
  readonly asked: (LaunchRequest & { refused: number })[] = [];
  refuse: (req: LaunchRequest, attempt: number) => number = () => 0;
  private readonly live = new Map<string, { info: TaskInfo; stop: AbortController }>();
  private next = 0;

  async launch(req: LaunchRequest): Promise<string[]> {
    const attempt = this.asked.filter((a) => a.token === req.token).length + 1;
    const refused = Math.min(req.count, Math.max(0, this.refuse(req, attempt)));
    this.asked.push({ ...req, refused });
    const started = req.count - refused;
    if (started > 0) this.launches.push({ ...req, count: started });
    const ids = Array.from({ length: started }, (_, i) => `fleet-${req.token}-${this.asked.length}-${i}`);
    if (refused > 0)
      throw new LaunchFailedError(ids, refused, `injected: RunTask refused ${refused} of ${req.count} tasks`);
    return ids;
  }

  async stop(site: string, token: string): Promise<number> {
    this.stops.push({ site, token });
    let n = 0;
    for (const t of this.live.values()) {
      if (t.info.site === site && t.info.token === token && !t.stop.signal.aborted) {
        t.stop.abort();
        n++;
      }
    }
    return n;
  }

  async list(): Promise<TaskInfo[]> {
    return [...this.live.values()].map((t) => t.info);
  }

  /** Registers a running worker; the returned function unregisters it. */
  track(site: string, token: string, stop: AbortController): () => void {
    const id = `task-${++this.next}`;
    this.live.set(id, { info: { id, site, token }, stop });
    return () => this.live.delete(id);
  }
}

/** Delivers finalize requests as the finalize queue hands them out, each `deliveries` times at once. */
class FinalizeConsumer {
  readonly results: { token: string; result?: FinalizeResult; error?: unknown }[] = [];
  requests = 0;
  private readonly running = new Set<Promise<unknown>>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly deps: PipelineDeps,
    private readonly deliveries: number,
    private readonly token: string,
    private readonly retrySeconds: number,
  ) {}

  start(): void {
    const tick = () => {
      void this.pollInTurn()
        .catch(() => undefined)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, 100);
        });
    };
    tick();
  }

  /** Polls once, after any poll under way (polls never overlap). */
  private pollInTurn(): Promise<number> {
    const p = this.chain.then(() => this.poll());
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /**
   * As the Lambda event source does: a request is deleted once its finalize returned, and made visible again
   * (after `retrySeconds`, standing in for the queue's visibility timeout) when it threw.
   */
  private async poll(): Promise<number> {
    const url = this.deps.env.finalizeQueueUrl;
    const msgs = await this.deps.queues.receive(url, { max: 10, waitSeconds: 0 });
    for (const m of msgs) {
      const req = JSON.parse(m.Body!) as { site: string; token: string };
      if (req.token === this.token) this.requests++;
      const p = Promise.all(
        Array.from({ length: this.deliveries }, () =>
          finalizeJob(this.deps, req.site, req.token).then(
            (result) => {
              this.results.push({ token: req.token, result });
              return true;
            },
            (error: unknown) => {
              this.results.push({ token: req.token, error });
              return false;
            },
          ),
        ),
      ).then(async (ok) => {
        if (ok.every(Boolean)) await this.deps.queues.delete(url, m.ReceiptHandle!);
        else await this.deps.queues.extendVisibility(url, m.ReceiptHandle!, this.retrySeconds);
      });
      const settled = p.catch(() => undefined);
      this.running.add(settled);
      void settled.finally(() => this.running.delete(settled));
    }
    return msgs.length;
  }

  /** Delivers what is queued and waits for every finalize under way. */
  async drain(): Promise<void> {
    for (let empty = 0; empty < 2;) {
      if ((await this.pollInTurn()) === 0) empty++;
    }
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  async stopPolling(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain;
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  mine(): { result?: FinalizeResult; error?: unknown }[] {
    return this.results.filter((r) => r.token === this.token);
  }
}

export interface FaultyJobOptions {
  readonly site: string;
  readonly office?: string;
  /** The uploaded file (a string is sent as UTF-8). */
  readonly csv: string | Buffer;
  readonly workers: number;
  /** A delay per record (the simulation option), so that workers overlap. */
  readonly delayMs?: number;
  /** Deps of the split. @default deps */
  readonly splitDeps?: PipelineDeps;
  /** Deps of the i-th worker started for the job (0-based, relaunched ones included). @default deps */
  readonly workerDeps?: (life: WorkerLife) => PipelineDeps;
  /** Deps of every finalize. @default deps */
  readonly finalizeDeps?: PipelineDeps;
  /** Each finalize request is delivered this many times, all at once. @default 1 */
  readonly finalizeDeliveries?: number;
  /** @default 2 */
  readonly visibilitySeconds?: number;
  /** The job is declared stuck when it has not ended after this long. */
  readonly deadlineMs: number;
  /** Said when the job is stuck (e.g. the seed that replays the run). */
  readonly context?: string;
}

export interface WorkerOutcome {
  readonly index: number;
  readonly summary?: WorkerSummary;
  readonly error?: unknown;
  readonly killed?: string;
}

export interface FaultyJobRun {
  readonly token: string;
  readonly job: Job;
  readonly workers: readonly WorkerOutcome[];
  /** Results of every finalizeJob call for this job. */
  readonly finalizes: readonly { result?: FinalizeResult; error?: unknown }[];
  /** Finalize requests this job's finalize queue delivered. */
  readonly finalizeRequests: number;
  /** What the reaper had to do: workers relaunched, finalizes asked again; passes that failed. */
  readonly reaper: { relaunches: number; finalizeRequests: number; errors: string[] };
  readonly rounds: number;
  readonly ms: number;
}

export class StuckJobError extends Error {
  override readonly name = 'StuckJobError';
}

/**
 * Runs one job: a direct upload split inline (the launcher is asked for workers), the launched workers as
 * runWorker loops with their own (faulty) deps, finalize as the finalize queue delivers it, concurrently
 * with the workers. When every worker has exited and the job has not ended, the reaper runs, as it does
 * every few minutes on AWS: it relaunches workers (RunTask tasks are never replaced) or asks for the
 * finalize again. A job that has not ended by the deadline is stuck: that throws.
 */
export async function runFaultyJob(
  deps: PipelineDeps,
  launcher: FleetLauncher,
  o: FaultyJobOptions,
): Promise<FaultyJobRun> {
  const started = Date.now();
  const visibilitySeconds = o.visibilitySeconds ?? 2;
  const launchedBefore = launcher.launches.length;
  const view = await startDirectJob(
    o.splitDeps ?? deps,
    o.site,
    typeof o.csv === 'string' ? Buffer.from(o.csv, 'utf8') : o.csv,
    {
      processor: 'json',
      office: o.office,
      workers: o.workers,
      simulateDelayMs: o.delayMs,
    },
  );
  const { token, site } = view;
  // The reaper sees this job only: other tests' jobs run concurrently on the same table.
  const scoped = withAdapters(deps, {
    jobs: { around: { listActive: async (call) => (await call()).filter((j) => j.token === token) } },
  });
  const finalizer = new FinalizeConsumer(
    o.finalizeDeps ?? deps,
    o.finalizeDeliveries ?? 1,
    token,
    visibilitySeconds,
  );
  finalizer.start();
  const outcomes: WorkerOutcome[] = [];
  let cursor = launchedBefore;
  let index = 0;
  let rounds = 0;
  const reaper = { relaunches: 0, finalizeRequests: 0, errors: [] as string[] };

  const startWorker = async (): Promise<void> => {
    const stop = new AbortController();
    const life = new WorkerLife(index++, stop);
    const untrack = launcher.track(site, token, stop);
    try {
      const summary = await runWorker(o.workerDeps?.(life) ?? deps, {
        site,
        token,
        waitSeconds: 0,
        idlePolls: 3,
        visibilitySeconds,
        signal: stop.signal,
      });
      outcomes.push({ index: life.index, summary, killed: life.dead });
    } catch (error) {
      outcomes.push({ index: life.index, error, killed: life.dead });
    } finally {
      life.end();
      untrack();
    }
  };

  let job: Job | undefined;
  try {
    for (;;) {
      rounds++;
      const launches = launcher.launches.slice(cursor).filter((l) => l.token === token);
      cursor = launcher.launches.length;
      await Promise.all(launches.flatMap((l) => Array.from({ length: l.count }, startWorker)));
      await finalizer.drain();
      job = await deps.jobs.get(site, token);
      if (!job) throw new Error(`job ${site}/${token} vanished`);
      if (isTerminal(job.state)) break;
      if (Date.now() - started > o.deadlineMs) {
        throw new StuckJobError(
          `job stuck in ${job.state} after ${Date.now() - started} ms and ${rounds} rounds: ` +
            `${job.chunksDone}/${job.totalChunks ?? '?'} chunks counted, ` +
            `${job.succeeded} succeeded, ${job.failed} failed; finalize calls: ` +
            JSON.stringify(finalizer.mine().map((r) => (r.error ? String(r.error) : r.result?.state))) +
            (o.context ? `; ${o.context}` : ''),
        );
      }
      let report: Awaited<ReturnType<typeof reap>>;
      try {
        report = await reap(scoped, { graceSeconds: 0 });
      } catch (error) {
        // A failed pass is retried (on AWS: at the next schedule), as long as the deadline allows.
        reaper.errors.push(String(error));
        await sleep(200);
        continue;
      }
      const relaunched = report.relaunched.filter((r) => r.token === token).length;
      const requested = report.finalizeRequested.filter((r) => r.token === token).length;
      reaper.relaunches += relaunched;
      reaper.finalizeRequests += requested;
      if (relaunched + requested === 0) await sleep(200);
    }
  } finally {
    await finalizer.stopPolling();
  }
  return {
    token,
    job,
    workers: outcomes.sort((a, b) => a.index - b.index),
    finalizes: finalizer.mine(),
    finalizeRequests: finalizer.requests,
    reaper,
    rounds,
    ms: Date.now() - started,
  };
}

/** Captures the chunk messages the split sends (the bodies, and the job queue's URL). */
export function capturingChunks(deps: PipelineDeps): {
  deps: PipelineDeps;
  chunks: ChunkMessage[];
  queueUrl: () => string;
} {
  const chunks: ChunkMessage[] = [];
  let url: string | undefined;
  const wrapped = withAdapters(deps, {
    queues: {
      around: {
        sendBatch: async (call, queueUrl, _site, _token, bodies) => {
          await call();
          url = queueUrl;
          for (const b of bodies) chunks.push(decodeChunk(b));
        },
      },
    },
  });
  return {
    deps: wrapped,
    chunks,
    queueUrl: () => {
      if (!url) throw new Error('the split sent no chunks');
      return url;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Usage

/** An office's usage figures over yesterday, today and tomorrow in the site's time zone. */
export async function usageAround(deps: PipelineDeps, site: string, office: string): Promise<UsageFigures> {
  const tz = loadConfig().sites.find((s) => s.id === site)?.timeZone ?? 'Asia/Tokyo';
  const today = localDay(new Date(), tz);
  const offices = await usageStoreOf(deps).offices(site, addDays(today, -1), addDays(today, 1));
  return offices.get(office) ?? NO_USAGE;
}

/** A finalize queue of its own (the reaper and the workers send to it), so tests can run side by side. */
export async function ownFinalizeQueue(deps: PipelineDeps, label: string): Promise<PipelineDeps> {
  const r = await sqsClient().send(
    new CreateQueueCommand({
      QueueName: `local-finalize-${label}-${process.pid}-${randomInt(0, 2 ** 31)}`,
      Attributes: { VisibilityTimeout: '120' },
    }),
  );
  return { ...deps, env: { ...deps.env, finalizeQueueUrl: r.QueueUrl! } };
}
