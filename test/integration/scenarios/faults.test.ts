/**
 * Fault injection (issue 5): whole jobs run in this process on the embedded emulators — split, a fleet of
 * runWorker loops, finalize as the finalize queue delivers it, the reaper as the backstop — while workers
 * are killed at random points, messages are delivered twice, S3 and DynamoDB writes fail, finalize runs
 * twice at once and a chunk is poison. After each job the Jepsen-style checker sorts every record into
 * present / missing / duplicated and the test fails on any missing or duplicated record.
 *
 * Randomized from one seed, printed at the start: `FAULT_SEED=<seed>` replays the same fault plans (which
 * calls fail, which workers die where, which chunks are duplicated or poison, the files). Timing still
 * varies between runs, as it does in production. `npm run test:chaos` runs the same scenarios with more
 * iterations, larger files and more faults (CHAOS=1).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeChunk, type ChunkMessage } from '../../../core/messages/chunk.ts';
import type { Job } from '../../../core/jobs/store.ts';
import { keys, newJobToken, reportQueueName } from '../../../core/jobs/keys.ts';
import type { PipelineDeps } from '../../../core/deps.ts';
import { UsageStore, type UsageFigures } from '../../../core/usage/store.ts';
import { dynamoClient } from '../../../core/aws/clients.ts';
import { tableDefinition } from '../../../core/jobs/table.ts';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { MAX_CHUNK_ATTEMPTS, runWorker } from '../../../core/work/worker.ts';
import { testDeps, TEST_STAGE, TEST_TIMINGS, useTestAws } from '../../helpers/aws.ts';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Queues } from '../../../core/aws/queues.ts';
import { reap } from '../../../core/reaper/reaper.ts';
import {
  capturingChunks,
  faultSeed,
  FleetLauncher,
  InjectedFault,
  jittered,
  mortal,
  ownFinalizeQueue,
  rngFor,
  runFaultyJob,
  usageAround,
  withAdapters,
  type FaultyJobOptions,
  type FaultyJobRun,
  type Rng,
  type WorkerLife,
} from '../../helpers/faults.ts';
import { checkZip, describeCheck, expectExactlyOnce, type RecordCheck } from '../../helpers/jepsen.ts';
import { csvOf } from '../../helpers/pipeline-jobs.ts';

const CHAOS = process.env.CHAOS === '1';
/** Jobs per scenario. */
const ITERATIONS = CHAOS ? Number(process.env.CHAOS_ITERATIONS ?? 10) : 1;
const SEED = faultSeed();
const REPLAY = `seed ${SEED} — replay: FAULT_SEED=${SEED} ${CHAOS ? 'npm run test:chaos' : 'npx vitest run test/integration/scenarios/faults.test.ts'}`;
/** A job that has not ended by then is stuck. */
const DEADLINE_MS = CHAOS ? 120_000 : 30_000;
/** Failed receives a chunk may take from injected faults and still be expected to succeed (one in reserve). */
const STRIKE_BUDGET = MAX_CHUNK_ATTEMPTS - 2;

const aws = useTestAws();

beforeAll(async () => {
  console.log(`faults: ${REPLAY}`);
});

// ---------------------------------------------------------------------------------------------------------
// Jobs and their expected outcome

interface Spec {
  readonly site: string;
  readonly office: string;
  readonly records: number;
  /** Records with an extra field: rejected by the split (COLUMN_COUNT). */
  readonly bad: readonly number[];
  readonly workers: number;
  readonly csv: string;
  readonly delayMs: number;
}

/** A random file of `records` lines `n,name n`, a few of them rejected by the split. */
function specFor(rng: Rng, site: string, office: string, o: { minBad?: number } = {}): Spec {
  const records = CHAOS ? rng.int(400, 3000) : rng.int(150, 300);
  const all = Array.from({ length: records }, (_, i) => i + 1);
  const bad = rng.sample(all, rng.int(o.minBad ?? 0, Math.max(o.minBad ?? 0, CHAOS ? 6 : 2)));
  bad.sort((a, b) => a - b);
  return {
    site,
    office,
    records,
    bad,
    workers: CHAOS ? rng.int(2, 4) : 3, // the local stage's maxWorkersPerJob is 4
    csv: csvOf(records, bad),
    delayMs: 1,
  };
}

/** Each entry must hold its own record (csvOf writes `n,name n`). */
function rowContent(n: number, data: Buffer): string | undefined {
  const row = JSON.parse(data.toString('utf8')) as { id?: string; name?: string };
  return row.id === String(n) && row.name === `name ${n}` ? undefined : `holds ${data.toString('utf8')}`;
}

interface Scenario {
  readonly deps: PipelineDeps;
  readonly launcher: FleetLauncher;
}

/**
 * Deps of one scenario: its own fleet, finalize queue and usage counters, so scenarios run side by side
 * (and the figures of one job are told apart from another scenario's).
 */
async function scenario(label: string): Promise<Scenario> {
  const launcher = new FleetLauncher();
  // Small chunks (the split's pieces are 1,000 records otherwise), so every worker holds several.
  const limits = { chunkMaxRecords: CHAOS ? 60 : 20 };
  const usageTable = `${aws.table}-usage-${label}`;
  await dynamoClient().send(new CreateTableCommand(tableDefinition(usageTable)));
  const deps = await ownFinalizeQueue(testDeps(aws, { launcher, limits }), label);
  return { deps: { ...deps, usage: new UsageStore(usageTable) }, launcher };
}

/** Prints each job's story in the chaos run (or with FAULT_VERBOSE=1). */
function story(context: string, run: FaultyJobRun): void {
  if (CHAOS || process.env.FAULT_VERBOSE === '1') console.log(`${context}; ${describeRun(run)}`);
}

function describeRun(run: FaultyJobRun): string {
  const workers = run.workers
    .map(
      (w) =>
        `#${w.index}${w.killed ? ` killed(${w.killed})` : ''}` +
        (w.summary ? ` ${w.summary.reason}` : w.error ? ` error(${String(w.error)})` : ''),
    )
    .join(' ');
  return (
    `token ${run.token}; ${run.ms} ms, ${run.rounds} rounds; workers ${workers}; ` +
    `reaper ${JSON.stringify(run.reaper)}; finalize requests ${run.finalizeRequests}`
  );
}

/**
 * The zip holds each record exactly once; the failures are exactly the expected ones; the job record's
 * counts and its usage figures are exact (counted once, whatever was delivered twice).
 */
async function expectJobExact(
  s: Scenario,
  spec: Spec,
  run: FaultyJobRun,
  usageBefore: UsageFigures,
  context: string,
  o: {
    /** Records expected to fail (besides the rejected ones), with their code and, if given, message. */
    failed?: ReadonlyMap<number, { code: string; message?: string }>;
    /** Finalize invocations expected to throw (injected). */
    finalizeErrors?: number;
  } = {},
): Promise<RecordCheck> {
  const failed = o.failed ?? new Map<number, { code: string; message?: string }>();
  story(context, run);
  const why = `${REPLAY}; ${context}; ${describeRun(run)}`;
  const { job } = run;
  expect(job.state, why).toBe(spec.bad.length + failed.size === 0 ? 'SUCCEEDED' : 'PARTIAL');
  expect(job.resultKey, why).toBeDefined();
  const check = await checkZip(await s.deps.objects.bytes(job.resultKey!), spec.records, {
    content: rowContent,
  });
  expectExactlyOnce(check, why);

  const expectedFailures = new Map<number, { code: string; message?: string }>(failed);
  for (const n of spec.bad) expectedFailures.set(n, { code: 'COLUMN_COUNT' });
  const listed = check.errors.map((e) => ({
    n: e.n,
    code: e.code,
    ...(expectedFailures.get(e.n)?.message !== undefined ? { message: e.message } : {}),
  }));
  const wanted = [...expectedFailures.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([n, f]) => ({ n, code: f.code, ...(f.message !== undefined ? { message: f.message } : {}) }));
  expect(listed, `${why}; ${describeCheck(check)}`).toEqual(wanted);

  const counts = (j: Job) => ({
    total: j.totalRecords,
    succeeded: j.succeeded,
    failed: j.failed,
    rejected: j.rejected,
    chunksDone: j.chunksDone,
  });
  expect(counts(job), why).toEqual({
    total: spec.records,
    succeeded: spec.records - spec.bad.length - failed.size,
    failed: failed.size,
    rejected: spec.bad.length,
    chunksDone: job.totalChunks,
  });
  const usage = await usageAround(s.deps, spec.site, spec.office);
  expect(
    {
      jobs: usage.jobs - usageBefore.jobs,
      rows: usage.rows - usageBefore.rows,
      failedRows: usage.failedRows - usageBefore.failedRows,
    },
    `${why}: usage figures`,
  ).toEqual({ jobs: 1, rows: job.succeeded, failedRows: failed.size + spec.bad.length });

  const results = run.finalizes;
  expect(
    results.flatMap((r) => (r.error ? [String(r.error)] : [])),
    `${why}: finalize errors`,
  ).toHaveLength(o.finalizeErrors ?? 0);
  expect(
    results.filter((r) => r.result && r.result.state !== 'SKIPPED'),
    `${why}: finalizes that won`,
  ).toHaveLength(1);
  return check;
}

/** The chunk of a part key, or undefined. */
function partChunk(key: string): number | undefined {
  const m = /\/parts\/(\d+)\.part$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

/** Counts failed receives per chunk, so no chunk is pushed past its attempts by the faults themselves. */
class Strikes {
  private readonly n = new Map<number, number>();
  add(chunks: readonly number[]): void {
    for (const c of chunks) this.n.set(c, (this.n.get(c) ?? 0) + 1);
  }
  allow(chunks: Iterable<number>): boolean {
    for (const c of chunks) if ((this.n.get(c) ?? 0) >= STRIKE_BUDGET) return false;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Killed workers

type KillPoint = 'read' | 'after-put' | 'after-count' | 'before-delete' | 'instant' | 'sigterm';
const KILL_POINTS: readonly KillPoint[] = [
  'read',
  'after-put',
  'after-count',
  'before-delete',
  'instant',
  'sigterm',
];

interface KillPlan {
  readonly point: KillPoint;
  /** The n-th time the worker reaches the point (hooks), or ms after start (instant, sigterm). */
  readonly at: number;
}

function killPlan(rng: Rng, point: KillPoint = rng.pick(KILL_POINTS), first = false): KillPlan {
  const timed = point === 'instant' || point === 'sigterm';
  // The scenario's own kill comes early, while the job surely runs; the others at any time.
  return { point, at: timed ? (first ? rng.int(20, 120) : rng.int(30, 500)) : first ? 1 : rng.int(1, 3) };
}

/**
 * A worker that dies (SIGKILL) at its plan's point: reading a chunk's range, right after writing a part
 * (before the count), right after the count (before the delete), instead of the delete, or at a random
 * instant; or is stopped (SIGTERM) at a random instant. It only dies when no chunk it holds has used up
 * its strikes, so every chunk still gets a clean attempt.
 */
function killable(
  deps: PipelineDeps,
  life: WorkerLife,
  plan: KillPlan | undefined,
  strikes: Strikes,
): PipelineDeps {
  life.whenDead((chunks) => strikes.add(chunks));
  if (!plan) return mortal(deps, life);
  const mayDie = () => strikes.allow(life.held.values());
  let reached = 0;
  // The plan's n-th arrival at the point, or the first one after it where the worker may die.
  const hit = () => ++reached >= plan.at && mayDie();
  const kill = (where: KillPoint) => {
    life.die(where);
    life.check();
  };
  switch (plan.point) {
    case 'sigterm':
      life.later(plan.at, () => life.stop.abort());
      return mortal(deps, life);
    case 'instant': {
      const attempt = (tries: number) => {
        if (mayDie()) life.die('instant');
        else if (tries < 20) life.later(50, () => attempt(tries + 1));
      };
      life.later(plan.at, () => attempt(0));
      return mortal(deps, life);
    }
    case 'read':
      return mortal(deps, life, {
        objects: {
          bytes: (call, key, range) => {
            // Ranged reads are the chunks' (of the upload, or of its UTF-8 copy).
            if (range && hit()) kill('read');
            return call();
          },
        },
      });
    case 'after-put':
      return mortal(deps, life, {
        objects: {
          putNew: async (call, key) => {
            const stored = await call();
            if (partChunk(key) !== undefined && hit()) kill('after-put');
            return stored;
          },
        },
      });
    case 'after-count':
      return mortal(deps, life, {
        jobs: {
          countChunk: async (call) => {
            const r = await call();
            if (hit()) kill('after-count');
            return r;
          },
        },
      });
    case 'before-delete':
      return mortal(deps, life, {
        queues: {
          delete: (call, url) => {
            if (url !== deps.env.finalizeQueueUrl && hit()) kill('before-delete');
            return call();
          },
        },
      });
  }
}

// ---------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------
// The scenarios, as a table. Each runs ITERATIONS jobs (one when it stages a single precise interleaving)
// through runFaultyJob with its faults, checks that the faults happened, that the job is exact
// (expectJobExact), and what else it proves.

/** What one job of a scenario injects and checks. */
interface Faults {
  /** runFaultyJob's options beyond the job itself: the split's, workers' and finalize's deps, deliveries. */
  readonly run?: Partial<FaultyJobOptions>;
  /** After the run: checks that the faults happened; answers the context every check says, and what
   * expectJobExact is to expect beyond the rejected records. */
  check(run: FaultyJobRun): Checked | Promise<Checked>;
  /** After expectJobExact: what the scenario proves beyond the job being exact. */
  after?(run: FaultyJobRun, context: string): void;
}

interface Checked {
  readonly context: string;
  readonly failed?: ReadonlyMap<number, { code: string; message?: string }>;
  readonly finalizeErrors?: number;
}

interface FaultCase {
  /** The test's title. */
  readonly title: string;
  /** Its scenario (own fleet, finalize queue and usage table) and the seed stream of its plans: `label-i` for
   * each of ITERATIONS jobs, `label` for a single one. */
  readonly label: string;
  readonly single?: boolean;
  readonly site: string;
  readonly office: string;
  readonly minBad?: number;
  /** Deps of the jobs. @default the scenario's */
  readonly deps?: (s: Scenario) => PipelineDeps;
  /** The faults of job `i`, drawn from `rng` after its file (`spec`). */
  faults(s: Scenario, rng: Rng, spec: Spec, i: number, deps: PipelineDeps): Faults;
  /** After the last job (puts the scenario's fleet back). */
  readonly done?: (s: Scenario) => void;
}

const killedAt = (point: KillPoint): FaultCase => ({
  title: `finishes the chunks of a worker killed (${point}), another one stopped, by redelivery`,
  label: `kill-${point}`,
  site: 'sakai',
  office: 'main',
  faults: (s, rng, spec, i) => {
    // One worker dies at `point` the first time it gets there, another one at a random point, a third gets
    // SIGTERM at a random moment
    const strikes = new Strikes();
    const plans = new Map<number, KillPlan>();
    const [a, b, c] = rng.sample(
      Array.from({ length: spec.workers }, (_, k) => k),
      3,
    );
    if (a !== undefined) plans.set(a, killPlan(rng, point, true));
    if (b !== undefined) plans.set(b, killPlan(rng, rng.pick(KILL_POINTS.filter((p) => p !== 'sigterm'))));
    if (c !== undefined) plans.set(c, killPlan(rng, 'sigterm'));
    const chaosPlan = (index: number) => {
      const r = rngFor(SEED, `kill-${point}-${i}-worker-${index}`);
      return r.chance(0.3) ? killPlan(r) : undefined;
    };
    return {
      run: {
        workerDeps: (life) => {
          // Relaunched workers die too in the chaos run (less often); each chunk's strikes still hold.
          const plan =
            plans.get(life.index) ?? (CHAOS && life.index < 40 ? chaosPlan(life.index) : undefined);
          return killable(s.deps, life, plan, strikes);
        },
      },
      check: () => ({ context: `kill ${point} #${i}: plans ${JSON.stringify([...plans])}` }),
      after: (run, context) => {
        const killed = run.workers.filter((w) => w.killed !== undefined).map((w) => w.killed);
        expect(killed, `${REPLAY}; ${context}; ${describeRun(run)}`).toContain(point);
      },
    };
  },
});

const countFails = (
  when: 'before the write' | 'after the write, on the count that completes the job',
  site: string,
): FaultCase => ({
  title: `retries a chunk whose count (DynamoDB UpdateItem) fails once ${when}`,
  label: `count-${site}`,
  site,
  office: 'main',
  faults: (s, rng, _spec, i) => {
    const afterWrite = when !== 'before the write';
    const n = rng.int(1, 6);
    let calls = 0;
    let injected = '';
    return {
      run: {
        workerDeps: () =>
          withAdapters(s.deps, {
            jobs: {
              around: {
                countChunk: async (call, _site, _token, chunk) => {
                  const k = ++calls;
                  if (injected) return call();
                  if (!afterWrite) {
                    if (k !== n) return call();
                    injected = `call ${k} (chunk ${chunk}) failed before the write`;
                    throw new InjectedFault('injected UpdateItem failure');
                  }
                  const r = await call();
                  if (!r.complete) return r;
                  injected = `call ${k} (chunk ${chunk}) completed the job, then failed`;
                  throw new InjectedFault('injected UpdateItem failure after the write');
                },
              },
            },
          }),
      },
      check: () => {
        const context = `count #${i}: ${injected}`;
        expect(injected, context).not.toBe('');
        return { context };
      },
      after: (run) => {
        // The lost answer of the last count means no worker learns the job is complete: the reaper asks.
        if (afterWrite) expect(run.reaper.finalizeRequests, `${REPLAY}; ${describeRun(run)}`).toBe(1);
      },
    };
  },
});

const poisoned = (what: string, mode: 'read' | 'corrupt'): FaultCase => ({
  title: `records a poison chunk (${what} on every attempt) as CHUNK_FAILED and ends PARTIAL, never stuck`,
  label: `poison-${mode}`,
  site: mode === 'read' ? 'mizushima' : 'sakai',
  office: mode === 'read' ? 'west' : 'main',
  minBad: mode === 'read' ? 2 : 0,
  faults: (s, rng, spec, i) => {
    // One chunk — one that holds a rejected record, for the read failure — fails every time
    const capture = capturingChunks(s.deps);
    let poison: ChunkMessage | undefined;
    const poisonChunk = () => {
      if (!poison) {
        const holdingBad = capture.chunks.filter((c) =>
          spec.bad.some((n) => n >= c.n && n < c.n + c.records),
        );
        poison = rng.pick(mode === 'read' && holdingBad.length > 0 ? holdingBad : capture.chunks);
      }
      return poison;
    };
    const message = `injected: chunk range unreadable (${mode})`;
    let receives = 0;
    return {
      run: {
        splitDeps: capture.deps,
        workerDeps: () =>
          withAdapters(s.deps, {
            queues: {
              around: {
                receive: async (call) => {
                  const ms = await call();
                  receives += ms.filter(
                    (m) => JSON.parse(m.Body ?? '{}').chunk === poisonChunk().chunk,
                  ).length;
                  return ms;
                },
              },
            },
            objects: {
              around: {
                bytes: async (call, key, range) => {
                  const p = poisonChunk();
                  if (key !== p.key || range?.start !== p.start) return call();
                  if (mode === 'read') throw new InjectedFault(message);
                  const b = await call();
                  return b.subarray(0, Math.floor(b.length / 2));
                },
              },
            },
          }),
      },
      // The poison chunk's accepted records failed with the last error; the others succeeded
      check: () => {
        const p = poisonChunk();
        const failed = new Map<number, { code: string; message?: string }>();
        for (let n = p.n; n < p.n + p.records; n++) {
          if (!spec.bad.includes(n))
            failed.set(n, { code: 'CHUNK_FAILED', ...(mode === 'read' ? { message } : {}) });
        }
        return { context: `poison #${i}: chunk ${p.chunk} (records ${p.n}..${p.n + p.records - 1})`, failed };
      },
      after: (_run, context) => {
        expect(receives, `${REPLAY}; ${context}: attempts`).toBe(MAX_CHUNK_ATTEMPTS);
      },
    };
  },
});

type RefusalPlan = 'all-refused-then-accepted' | 'half-refused' | 'intermittent';
const refused = (plan: RefusalPlan): FaultCase => ({
  title: `completes every job exactly once when worker launches are refused (${plan}): the reaper launches the rest, with backoff`,
  label: `launch-${plan}`,
  site: 'kawasaki',
  office: 'main',
  // A short backoff, so that a few refusals in a row fit the deadline.
  deps: (s) => ({
    ...s.deps,
    timings: { ...s.deps.timings, launchRetryBaseSeconds: 1, launchRetryMaxSeconds: 2 },
  }),
  faults: (s, rng, _spec, i) => {
    // The launch policy of the plan
    const refusedFirst = rng.int(2, CHAOS ? 5 : 3);
    s.launcher.refuse = (req, attempt) => {
      if (plan === 'all-refused-then-accepted') return attempt <= refusedFirst ? req.count : 0;
      if (plan === 'half-refused') return Math.ceil(req.count / 2);
      // The split's launch is always cut short; later ones are refused (some or all tasks) at random.
      const r = rngFor(SEED, `launch-${plan}-${i}-${attempt}`);
      return attempt === 1 || r.chance(0.5) ? r.int(1, req.count) : 0;
    };
    let asked: typeof s.launcher.asked = [];
    return {
      check: (run) => {
        asked = s.launcher.asked.filter((a) => a.token === run.token);
        return { context: `launch ${plan} #${i}: ${JSON.stringify(asked.map((a) => [a.count, a.refused]))}` };
      },
      // The refusals really happened and were made up for
      after: (run, context) => {
        expect(
          asked.reduce((n, a) => n + a.refused, 0),
          context,
        ).toBeGreaterThan(0);
        if (plan === 'all-refused-then-accepted') {
          expect(
            asked.slice(0, refusedFirst).every((a) => a.refused === a.count),
            context,
          ).toBe(true);
        }
        expect(s.launcher.launches.filter((l) => l.token === run.token).length, context).toBeGreaterThan(0);
      },
    };
  },
  done: (s) => {
    s.launcher.refuse = () => 0;
  },
});

const CASES: readonly FaultCase[] = [
  ...KILL_POINTS.filter((p) => p !== 'sigterm').map(killedAt),
  {
    title: 'is unaffected by chunk messages delivered twice, at once and after they were counted',
    label: 'dup',
    site: 'sakai',
    office: 'port',
    faults: (s, _rng, _spec, i) => {
      // Chunk 0 and some others are sent twice right away, others once more right after they were counted
      const capture = capturingChunks(s.deps);
      let sent = 0;
      const resend = async (c: ChunkMessage) => {
        await s.deps.queues.sendOne(capture.queueUrl(), JSON.stringify(c), c.site, c.token);
        sent++;
      };
      const splitDeps = withAdapters(capture.deps, {
        queues: {
          around: {
            sendBatch: async (call, _url, _site, _token, bodies) => {
              await call();
              const now = bodies
                .map(decodeChunk)
                .filter(
                  (c) => c.chunk === 0 || rngFor(SEED, `dup-now-${i}-${c.chunk}`).chance(CHAOS ? 0.3 : 0.25),
                );
              await Promise.all(now.map(resend));
            },
          },
        },
      });
      const late = new Set<number>();
      return {
        run: {
          splitDeps,
          finalizeDeliveries: 2,
          workerDeps: () =>
            withAdapters(s.deps, {
              jobs: {
                around: {
                  countChunk: async (call, _site, _token, chunk) => {
                    const r = await call();
                    if (r.counted && !late.has(chunk) && rngFor(SEED, `dup-late-${i}-${chunk}`).chance(0.3)) {
                      late.add(chunk);
                      const c = capture.chunks.find((x) => x.chunk === chunk);
                      if (c) await resend(c);
                    }
                    return r;
                  },
                },
              },
            }),
        },
        check: () => {
          const context = `dup #${i}: ${sent} duplicates sent (${late.size} after the count)`;
          expect(sent, context).toBeGreaterThan(0);
          return { context };
        },
      };
    },
  },
  {
    title: 'retries a chunk whose part PUT fails (S3 on the Nth call, before or after the write)',
    label: 's3put',
    site: 'kawasaki',
    office: 'main',
    faults: (s, rng, _spec, i) => {
      // The Nth PutObject of the workers fails (and a few more in the chaos run)
      const strikes = new Strikes();
      const failing = new Set<number>([rng.int(1, 6)]);
      for (let k = 0; k < (CHAOS ? 8 : 1); k++) failing.add(rng.int(1, CHAOS ? 60 : 12));
      let calls = 0;
      const injected: string[] = [];
      return {
        run: {
          workerDeps: () =>
            withAdapters(s.deps, {
              objects: {
                around: {
                  putNew: async (call, key) => {
                    const chunk = partChunk(key);
                    const n = ++calls;
                    if (chunk === undefined || !failing.has(n) || !strikes.allow([chunk])) return call();
                    strikes.add([chunk]);
                    const after = rngFor(SEED, `s3put-after-${i}-${n}`).chance(0.5);
                    injected.push(`call ${n}: chunk ${chunk} ${after ? 'after' : 'before'} the write`);
                    if (after) await call();
                    throw new InjectedFault(`injected PutObject failure (call ${n})`);
                  },
                },
              },
            }),
        },
        check: () => {
          const context = `s3put #${i}: ${injected.join(', ')}`;
          expect(injected.length, context).toBeGreaterThan(0);
          return { context };
        },
      };
    },
  },
  countFails('before the write', 'kashima'),
  countFails('after the write, on the count that completes the job', 'marifu'),
  {
    title: 'finalizes once when finalize is invoked twice at the same time: one zip, one state change',
    label: 'finalize',
    site: 'mizushima',
    office: 'main',
    faults: (s, rng, spec, i) => {
      // Every finalize request is delivered 2 (chaos: 2-4) times at once, with random delays at every storage
      // call so the invocations interleave differently each time
      const deliveries = CHAOS ? rng.int(2, 4) : 2;
      let zips = 0;
      let sheets = 0;
      const finalStates: string[] = [];
      const finalizeDeps = withAdapters(jittered(s.deps, rng, 15), {
        objects: {
          around: {
            multipart: (call, key) => {
              // The zip, and results.csv beside it (its own upload: GET /jobs/{token}/results).
              if (key.startsWith('results/') && key.endsWith('.zip')) zips++;
              if (key.startsWith('results/') && key.endsWith('/results.csv')) sheets++;
              return call();
            },
          },
        },
        jobs: {
          around: {
            transition: async (call, _site, _token, to) => {
              const r = await call();
              if (r) finalStates.push(to);
              return r;
            },
          },
        },
      });
      return {
        run: { finalizeDeliveries: deliveries, finalizeDeps },
        check: () => ({ context: `finalize #${i}: ${deliveries} deliveries` }),
        after: (run, context) => {
          const why = `${REPLAY}; ${context}; ${describeRun(run)}`;
          expect(run.finalizeRequests, why).toBe(1);
          expect(run.finalizes.map((r) => r.result?.state).sort(), why).toEqual(
            [run.job.state, ...Array.from({ length: deliveries - 1 }, () => 'SKIPPED')].sort(),
          );
          expect(zips, `${why}: zip uploads`).toBe(1);
          expect(sheets, `${why}: results.csv uploads`).toBe(1);
          expect(finalStates, `${why}: final state changes`).toEqual([run.job.state]);
          expect(
            s.launcher.stops.filter((x) => x.token === run.token),
            `${why}: task stops`,
          ).toHaveLength(1);
          expect(run.job.resultKey, why).toBe(keys.result(spec.site, run.token));
        },
      };
    },
  },
  poisoned('S3 GetObject of its range fails', 'read'),
  poisoned('its range reads back truncated', 'corrupt'),
  {
    title: 'keeps a slow chunk hidden while it is worked on (heartbeat): it is received once',
    label: 'heartbeat',
    single: true,
    site: 'kashima',
    office: 'main',
    faults: (s, rng) => {
      // One chunk's range read takes more than twice the visibility timeout (2 s)
      const capture = capturingChunks(s.deps);
      let slow: ChunkMessage | undefined;
      const slowChunk = () => (slow ??= rng.pick(capture.chunks));
      let slowed = false;
      let receives = 0;
      return {
        run: {
          splitDeps: capture.deps,
          workerDeps: () =>
            withAdapters(s.deps, {
              queues: {
                around: {
                  receive: async (call) => {
                    const ms = await call();
                    receives += ms.filter(
                      (m) => decodeChunk(m.Body ?? '').chunk === slowChunk().chunk,
                    ).length;
                    return ms;
                  },
                },
              },
              objects: {
                around: {
                  bytes: async (call, key, range) => {
                    if (key === slowChunk().key && range?.start === slowChunk().start && !slowed) {
                      slowed = true;
                      await sleep(4500);
                    }
                    return call();
                  },
                },
              },
            }),
        },
        check: (run) => {
          const context = `heartbeat: chunk ${slowChunk().chunk} read in 4.5 s`;
          expect(slowed, context).toBe(true);
          expect(receives, `${REPLAY}; ${context}; ${describeRun(run)}: deliveries of the slow chunk`).toBe(
            1,
          );
          return { context };
        },
      };
    },
  },
  {
    title: 'never replaces the part of a chunk that was counted (a give-up after a lost answer)',
    label: 'counted',
    single: true,
    site: 'kawasaki',
    office: 'main',
    faults: (s, rng) => {
      // Chunk c is processed and counted, but the count's answer is lost (DynamoDB applied the UpdateItem, the
      // response timed out); its next two attempts cannot read the range (S3 errors), so the third gives up on
      // a chunk whose records were already counted as succeeded. Another chunk's range read is slow (a 7 s
      // GetObject), so the job is still running then.
      const capture = capturingChunks(s.deps);
      let picked: [ChunkMessage, ChunkMessage] | undefined;
      const chunks = () => (picked ??= rng.sample(capture.chunks, 2) as [ChunkMessage, ChunkMessage]);
      const faults: string[] = [];
      let counted = false;
      let slowed = false;
      let readFailures = 0;
      return {
        run: {
          splitDeps: capture.deps,
          workerDeps: () =>
            withAdapters(s.deps, {
              jobs: {
                around: {
                  countChunk: async (call, _site, _token, c) => {
                    const r = await call();
                    if (c !== chunks()[0].chunk || counted) return r;
                    counted = true;
                    faults.push(`count of chunk ${c} applied, answer lost`);
                    throw new InjectedFault('injected: UpdateItem timed out after the write');
                  },
                },
              },
              objects: {
                around: {
                  bytes: async (call, key, range) => {
                    const [c, slow] = chunks();
                    if (key === slow.key && range?.start === slow.start && !slowed) {
                      slowed = true;
                      faults.push(`read of chunk ${slow.chunk} slow`);
                      await sleep(7000);
                    } else if (key === c.key && range?.start === c.start && counted && readFailures < 2) {
                      readFailures++;
                      faults.push(`read of chunk ${c.chunk} failed`);
                      throw new InjectedFault('injected: GetObject failed');
                    }
                    return call();
                  },
                },
              },
            }),
        },
        // The records counted as succeeded are in the zip, once
        check: () => {
          const context = `counted chunk ${chunks()[0].chunk}: ${faults.join(', ')}`;
          expect(readFailures, context).toBe(2);
          return { context };
        },
      };
    },
  },
  {
    title: 'never lets a give-up replace the part that a concurrent delivery of the chunk stores and counts',
    label: 'giveup-race',
    single: true,
    site: 'marifu',
    office: 'main',
    faults: (s, rng) => {
      // Chunk c cannot be read on its first 3 attempts, so the third gives up on it. Right after the give-up has
      // checked that c is not counted, a second delivery of c (SQS delivers at least once) reaches another
      // worker, which reads, stores and counts it; then the give-up writes its part.
      const capture = capturingChunks(s.deps);
      let target: ChunkMessage | undefined;
      const chunk = () => (target ??= rng.pick(capture.chunks));
      let readFailures = 0;
      let raced = false;
      let otherCounted = () => {};
      const countedByOther = new Promise<void>((r) => (otherCounted = r));
      let giveUpStored = () => {};
      const storedByGiveUp = new Promise<void>((r) => (giveUpStored = r));
      const others: Promise<unknown>[] = [];
      const reads = (base: PipelineDeps) =>
        withAdapters(base, {
          objects: {
            around: {
              bytes: async (call, key, range) => {
                if (
                  key === chunk().key &&
                  range?.start === chunk().start &&
                  readFailures < MAX_CHUNK_ATTEMPTS
                ) {
                  readFailures++;
                  throw new InjectedFault('injected: GetObject failed');
                }
                return call();
              },
            },
          },
        });
      const secondDelivery = async (site: string, token: string) => {
        await s.deps.queues.sendOne(capture.queueUrl(), JSON.stringify(chunk()), site, token);
        const counting = withAdapters(s.deps, {
          jobs: {
            around: {
              countChunk: async (call, _site, _token, c) => {
                const r = await call();
                if (c === chunk().chunk) otherCounted();
                return r;
              },
            },
          },
        });
        // A worker of the fleet (the finalize stops it), started here so that it is surely polling now.
        const stop = new AbortController();
        const untrack = s.launcher.track(site, token, stop);
        const worker = runWorker(counting, {
          site,
          token,
          waitSeconds: 0,
          idlePolls: 3,
          visibilitySeconds: 2,
          signal: stop.signal,
        });
        others.push(worker.catch(() => undefined).finally(untrack));
        await countedByOther;
      };
      return {
        run: {
          splitDeps: capture.deps,
          workerDeps: () =>
            withAdapters(reads(s.deps), {
              jobs: {
                around: {
                  isChunkCounted: async (call, site, token, c) => {
                    const counted = await call();
                    if (c !== chunk().chunk || counted || raced) return counted;
                    raced = true;
                    await secondDelivery(site, token);
                    return counted;
                  },
                },
              },
              objects: {
                around: {
                  putNew: async (call, key) => {
                    const stored = await call();
                    if (raced && partChunk(key) === chunk().chunk) giveUpStored();
                    return stored;
                  },
                },
              },
            }),
          // The finalize reads the parts once the give-up has stored its part (or could not have).
          finalizeDeps: withAdapters(s.deps, {
            jobs: {
              around: {
                beginFinalize: async (call) => {
                  await Promise.race([storedByGiveUp, sleep(1500)]);
                  return call();
                },
              },
            },
          }),
        },
        // Chunk c's records were processed and counted by the second delivery: they are in the zip
        check: async () => {
          await Promise.allSettled(others);
          const context = `give-up race on chunk ${chunk().chunk}`;
          expect(raced, context).toBe(true);
          return { context };
        },
      };
    },
  },
  {
    title: 'retries a finalize that failed (S3 multipart upload error) when its request is redelivered',
    label: 'finalize-fails',
    single: true,
    site: 'marifu',
    office: 'main',
    faults: (s) => {
      // The first finalize's zip upload fails; the request comes back (the Lambda reported it)
      let failures = 0;
      const finalizeDeps = withAdapters(s.deps, {
        objects: {
          around: {
            multipart: (call, key) => {
              const upload = call();
              if (!key.startsWith('results/') || failures > 0) return upload;
              failures++;
              return {
                ...upload,
                done: async () => {
                  await upload.abort();
                  throw new InjectedFault('injected: CompleteMultipartUpload failed');
                },
              };
            },
          },
        },
      });
      return {
        // The redelivery comes after `visibilitySeconds` (2 s): the job must end well before a lease runs out.
        run: { finalizeDeps, deadlineMs: 10_000 },
        check: () => {
          expect(failures).toBe(1);
          return { context: 'finalize fails once', finalizeErrors: 1 };
        },
      };
    },
  },
  ...(['all-refused-then-accepted', 'half-refused', 'intermittent'] as const).map(refused),
];

describe.concurrent('Fault injection: every record exactly once', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', async (_title, c) => {
    const s = await scenario(c.label);
    const deps = c.deps?.(s) ?? s.deps;
    for (let i = 0; i < (c.single ? 1 : ITERATIONS); i++) {
      // Prepare: a random file, and the scenario's faults
      const rng = rngFor(SEED, c.single ? c.label : `${c.label}-${i}`);
      const spec = specFor(rng, c.site, c.office, { minBad: c.minBad });
      const faults = c.faults(s, rng, spec, i, deps);
      const usageBefore = await usageAround(deps, spec.site, spec.office);

      // Act
      const run = await runFaultyJob(deps, s.launcher, {
        ...spec,
        deadlineMs: DEADLINE_MS,
        context: REPLAY,
        ...faults.run,
      });

      // Assess: the faults happened; every record exactly once, counts and usage exact; what else it proves
      const { context, failed, finalizeErrors } = await faults.check(run);
      await expectJobExact(s, spec, run, usageBefore, context, { failed, finalizeErrors });
      faults.after?.(run, context);
    }
    c.done?.(s);
  });

  it('completes a reaper pass when a finalize deletes a job queue while the reaper lists them', async () => {
    // Prepare: an orphan job queue (no job), deleted (as a finalize does) between ListQueues and ListQueueTags
    const s = await scenario('reaper-race');
    const token = newJobToken();
    const url = await s.deps.queues.createJobQueue({
      name: reportQueueName(TEST_STAGE, token),
      site: 'marifu',
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    let deleted = false;
    sqs.middlewareStack.add(
      (next, ctx) => async (args) => {
        const input = args.input as { QueueUrl?: string };
        if (ctx.commandName === 'ListQueueTagsCommand' && input.QueueUrl === url && !deleted) {
          deleted = true;
          await s.deps.queues.deleteQueue(url);
        }
        return next(args);
      },
      { step: 'initialize', name: 'deleteWhileListing' },
    );
    const scoped = withAdapters(
      { ...s.deps, queues: new Queues(sqs) },
      { jobs: { around: { listActive: async () => [] } } },
    );

    // Act
    const failure = await reap(scoped, { graceSeconds: 0 }).then(
      () => undefined,
      (err: unknown) => String(err),
    );

    // Assess: the pass went through (a vanished queue is simply gone)
    expect(deleted).toBe(true);
    expect(failure).toBeUndefined();
  });
});
