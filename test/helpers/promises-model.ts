/**
 * The model-based test of the promises where features meet (issue 19): fast-check commands drive the pipeline's
 * core on the embedded emulators — the real upload and status handlers behind the local API (HTTP), row workers
 * as runWorker loops that can be killed, finalize as its queue delivers, the reaper as the backstop — through
 * random sequences of uploads (UTF-8 and CP932, cells with CR / LF / CRLF / quotes / delimiters), cancels at a
 * random moment, retries (sometimes two at once), kills of a worker and failure-rate stops, with a processor that
 * has side effects and keeps every effect in a ledger file outside the pipeline (test/helpers/ledger-processor.ts).
 *
 * After each sequence, for every upload and every job a retry answered with (the token in the answer, whatever it
 * is: a new job today, the same job once a retry is an attempt of it):
 * - each record's effect happened at most once across all attempts (the ledger);
 * - each record ends in exactly one outcome: once per zip (results or errors.csv), and settled (a success or a
 *   code a retry does not run again) in at most one attempt;
 * - values are byte-exact: what the processor saw and what the results hold equal what was uploaded (CP932
 *   decoded);
 * - counts add up: succeeded + failed + rejected = total, in the view and in the manifest, as the zip holds them;
 * - a record reported as never processed (CANCELLED, STOPPED_EARLY, …) had no effect; a success had exactly one.
 *
 * A kill is the in-process kill -9 of test/helpers/faults.ts (every storage call of the worker fails from then on,
 * the chunks it held come back after their visibility timeout) with its records in flight aborted: the ledger
 * processor, aborted after its effect, ends the record as a dead process would leave it (in doubt).
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, vi } from 'vitest';
import iconv from 'iconv-lite';
import { API_ROUTES } from '../../config/routes.ts';
import type { LaunchRequest } from '../../core/aws/task-launcher.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { finalizeJob } from '../../core/finalize/finalize.ts';
import type { JobView } from '../../core/intake/operations.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { RETRIED_CODES } from '../../core/stop/rules.ts';
import { reap } from '../../core/reaper/reaper.ts';
import { runWorker } from '../../core/work/worker.ts';
import { createStatusHandler } from '../../lambdas/status/handler.ts';
import { createUploadHandler } from '../../lambdas/upload/handler.ts';
import { localContext } from '../../lambdas/shared/middleware.ts';
import { LocalApi } from '../../local/api-gateway.ts';
import { testDeps, type TestAws } from './aws.ts';
import { FleetLauncher, mortal, WorkerLife } from './faults.ts';
import { parse } from 'csv-parse/sync';
import { checkRecords, parseErrorsCsv, type ErrorLine } from './jepsen.ts';
import { LEDGER_FILE_ENV, LEDGER_PROCESSOR, readLedger, REFUSED_CODE } from './ledger-processor.ts';
import { readZip } from './zip.ts';

export const MODEL_SITE = 'sakai';

// ---------------------------------------------------------------------------------------------------------
// Uploads

export type ModelEncoding = 'utf-8' | 'cp932';

export interface RecordSpec {
  /** The `text` cell: any mix of the units below, quotes, delimiters and line breaks included. */
  readonly text: string;
  /** Refused by the processor (by this value: its `mode` cell is `refuse`). */
  readonly refuse: boolean;
}

export interface UploadSpec {
  readonly encoding: ModelEncoding;
  readonly records: readonly RecordSpec[];
  /** Between records. */
  readonly eol: '\n' | '\r\n' | '\r';
  readonly finalEol: boolean;
  readonly workers: number;
  readonly delayMs: number;
  readonly maxFailureRate?: number;
  /** The POST's Content-Type: `text/csv`, or another a client may send (curl's default, text/plain, …). */
  readonly contentType: string;
}

/** Content types a client may send a CSV with; any but text/csv may be refused (415), never decoded wrongly. */
export const CONTENT_TYPES = [
  'text/csv',
  'application/octet-stream',
  'text/plain',
  'application/x-www-form-urlencoded',
] as const;

/** Cell text; the CP932 units all have a CP932 form (and come back the same), the others are UTF-8 only. */
const COMMON_UNITS = [
  'a',
  'Z',
  '1',
  ' ',
  ',',
  '"',
  '""',
  '\n',
  '\r',
  '\r\n',
  ';',
  '\t',
  '=',
  '-',
  'ソ',
  '表',
  'ｱ',
];
const UTF8_UNITS = [...COMMON_UNITS, 'é', '😀', '\u00a0'];
const CP932_UNITS = [...COMMON_UNITS, '山', '髙', '①', '＼'];

const textOf = (units: readonly string[]) => fc.string({ unit: fc.constantFrom(...units), maxLength: 10 });

function recordsArb(enc: ModelEncoding, min: number, max: number, refuseWeight: number) {
  return fc.array(
    fc.record({
      text: textOf(enc === 'cp932' ? CP932_UNITS : UTF8_UNITS),
      refuse: fc.integer({ min: 0, max: 99 }).map((x) => x < refuseWeight),
    }),
    { minLength: min, maxLength: max },
  );
}

/** An upload: a small job, or one with enough refusals to trip maxFailureRate=0.1 after its first 100 records. */
export function uploadArb(maxRecords: number, contentTypes = false): fc.Arbitrary<UploadSpec> {
  const common = {
    contentType: contentTypes
      ? fc.oneof({ arbitrary: fc.constant('text/csv'), weight: 3 }, fc.constantFrom(...CONTENT_TYPES))
      : fc.constant('text/csv'),
    eol: fc.constantFrom<UploadSpec['eol']>('\n', '\r\n', '\r'),
    finalEol: fc.boolean(),
    workers: fc.integer({ min: 1, max: 3 }),
    delayMs: fc.integer({ min: 4, max: 20 }),
  };
  const plain = fc.constantFrom<ModelEncoding>('utf-8', 'cp932').chain((encoding) =>
    fc.record({
      encoding: fc.constant(encoding),
      records: recordsArb(encoding, 30, 30 + maxRecords, 8),
      ...common,
    }),
  );
  const stopping = fc.constantFrom<ModelEncoding>('utf-8', 'cp932').chain((encoding) =>
    fc.record({
      encoding: fc.constant(encoding),
      records: recordsArb(encoding, 200, 200 + maxRecords, 40),
      maxFailureRate: fc.constant(0.1),
      ...common,
    }),
  );
  return fc.oneof({ arbitrary: plain, weight: 3 }, { arbitrary: stopping, weight: 1 });
}

const cell = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

/** The uploaded records' fields (header first), ids `u<upload>-<i>`. */
export function fieldsOf(upload: number, spec: UploadSpec): string[][] {
  return [
    ['id', 'mode', 'text'],
    ...spec.records.map((r, i) => [`u${upload}-${i + 1}`, r.refuse ? 'refuse' : 'ok', r.text]),
  ];
}

export function fileOf(rows: readonly (readonly string[])[], spec: UploadSpec): Buffer {
  const text = rows.map((r) => r.map(cell).join(',')).join(spec.eol) + (spec.finalEol ? spec.eol : '');
  if (spec.encoding === 'utf-8') return Buffer.from(text, 'utf8');
  const bytes = iconv.encode(text, 'cp932');
  if (iconv.decode(bytes, 'cp932') !== text)
    throw new Error('model: a CP932 upload has a unit without a CP932 form');
  return bytes;
}

const describeUpload = (s: UploadSpec) =>
  `${s.records.length} records ${s.encoding} eol=${JSON.stringify(s.eol)} workers=${s.workers} ` +
  `delay=${s.delayMs}ms${s.contentType === 'text/csv' ? '' : ` as ${s.contentType}`} refused=${s.records.filter((r) => r.refuse).length}` +
  (s.maxFailureRate !== undefined ? ` maxFailureRate=${s.maxFailureRate}` : '');

/** A line on stderr when MODEL_VERBOSE is set. */
function verbose(s: string): void {
  if (process.env.MODEL_VERBOSE) process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${s}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// The fleet: workers, finalize and reaper of the jobs the model starts

/**
 * The fleet's launcher: stop() is the local launcher's (local/launcher.ts): SIGTERM to the job's workers, and it
 * returns once they have exited (SIGKILL after 10 s).
 */
export class ModelLauncher extends FleetLauncher {
  onStop: ((site: string, token: string) => Promise<number>) | undefined;

  override async stop(site: string, token: string): Promise<number> {
    if (!this.onStop) return super.stop(site, token);
    this.stops.push({ site, token });
    return this.onStop(site, token);
  }
}

interface LiveWorker {
  readonly life: WorkerLife;
  /** The worker's abortRecords (its records in flight aborted). */
  readonly kill: AbortController;
  done?: Promise<unknown>;
}

/** Row workers (killable), finalize deliveries and reaper passes for every job launched through `launcher`. */
export class ModelFleet {
  readonly errors: string[] = [];
  /** The last error of each job's finalize (it is delivered again; a job stuck says why). */
  readonly finalizeErrors = new Map<string, string>();
  private cursor = 0;
  private next = 0;
  private readonly lives = new Map<string, LiveWorker[]>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly watched = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastReap = 0;

  constructor(
    readonly deps: PipelineDeps,
    readonly launcher: ModelLauncher,
  ) {
    launcher.onStop = (_site, token) => this.terminate(token);
  }

  /**
   * SIGTERM to the job's workers, as fargate-worker/main.ts takes it: the chunks in hand are finished, unless the
   * job was stopped or has ended (then the records in flight are aborted at once). Waits for them to exit, and
   * kills those still running after 10 s, as the local launcher does.
   */
  private async terminate(token: string): Promise<number> {
    const ws = [...(this.lives.get(token) ?? [])];
    for (const w of ws) w.life.stop.abort();
    const job = await this.deps.jobs.get(MODEL_SITE, token, false).catch(() => undefined);
    if (job?.stop || job?.state !== 'RUNNING')
      for (const w of ws) w.kill.abort(new Error('SIGTERM: the job was stopped'));
    const exited = Promise.all(ws.map((w) => w.done));
    if ((await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) === false) {
      for (const w of ws) {
        w.kill.abort();
        w.life.die('SIGKILL after the stop timeout');
      }
      await exited;
    }
    return ws.length;
  }

  start(): void {
    const tick = () => {
      this.chain = this.chain
        .then(() => this.tick())
        .catch((err: unknown) => void this.errors.push(`fleet: ${String(err)}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, 50);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain;
    for (const ws of this.lives.values()) for (const w of ws) w.life.stop.abort();
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  watch(token: string): void {
    this.watched.add(token);
  }

  live(token: string): number {
    return this.lives.get(token)?.length ?? 0;
  }

  /** kill -9 of the `pick`-th live worker of the job; false when it has none. */
  kill(token: string, pick: number): boolean {
    const ws = this.lives.get(token) ?? [];
    const w = ws[pick % Math.max(1, ws.length)];
    if (!w) return false;
    w.kill.abort();
    w.life.die('killed by the model');
    return true;
  }

  private track(p: Promise<unknown>): Promise<unknown> {
    const settled = p.catch(() => undefined);
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
    return settled;
  }

  private startWorker(l: LaunchRequest): void {
    verbose(`worker start ${l.token}`);
    const stop = new AbortController();
    const kill = new AbortController();
    const life = new WorkerLife(this.next++, stop);
    const untrack = this.launcher.track(l.site, l.token, stop);
    const entry: LiveWorker = { life, kill };
    this.lives.set(l.token, [...(this.lives.get(l.token) ?? []), entry]);
    entry.done = this.track(
      runWorker(mortal(this.deps, life), {
        site: l.site,
        token: l.token,
        waitSeconds: 0,
        idlePolls: 3,
        visibilitySeconds: 2,
        signal: stop.signal,
        abortRecords: kill.signal,
      })
        .catch((err: unknown) => {
          if (!life.dead) this.errors.push(`worker of ${l.token}: ${String(err)}`);
        })
        .finally(() => {
          if (process.env.MODEL_VERBOSE)
            process.stderr.write(`${Date.now() % 100000} worker end ${l.token}\n`);
          life.end();
          untrack();
          this.lives.set(
            l.token,
            (this.lives.get(l.token) ?? []).filter((w) => w !== entry),
          );
        }),
    );
  }

  private async tick(): Promise<void> {
    for (const l of this.launcher.launches.slice(this.cursor)) {
      for (let i = 0; i < l.count; i++) this.startWorker(l);
    }
    this.cursor = this.launcher.launches.length;
    const url = this.deps.env.finalizeQueueUrl;
    const msgs = await this.deps.queues.receive(url, { max: 10, waitSeconds: 0 });
    for (const m of msgs) {
      const req = JSON.parse(m.Body!) as { site: string; token: string };
      this.track(
        finalizeJob(this.deps, req.site, req.token).then(
          (r) => {
            verbose(`finalize ${req.token}: ${JSON.stringify(r)}`);
            return this.deps.queues.delete(url, m.ReceiptHandle!);
          },
          (err: unknown) => {
            const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
            this.finalizeErrors.set(req.token, why.split('\n').slice(0, 4).join(' | '));
            verbose(`finalize ${req.token} failed: ${why}`);
            return this.deps.queues.extendVisibility(url, m.ReceiptHandle!, 1);
          },
        ),
      );
    }
    // The reaper's pass (every few minutes on AWS) when a job has no worker left and has not ended.
    if (Date.now() - this.lastReap > 1000 && (await this.orphans()).length > 0) {
      this.lastReap = Date.now();
      const r = await reap(this.deps, { graceSeconds: 0 });
      verbose(`reaper: ${JSON.stringify(r).slice(0, 300)}`);
    }
  }

  private async orphans(): Promise<string[]> {
    const out: string[] = [];
    for (const token of this.watched) {
      if (this.live(token) > 0) continue;
      const job = await this.deps.jobs.get(MODEL_SITE, token);
      if (job && !isTerminal(job.state)) out.push(token);
      else if (job) this.watched.delete(token);
    }
    return out;
  }

  /** Until every watched job has ended and no worker or finalize is left; false after `ms`. */
  settle(tokens: readonly string[], ms: number): Promise<boolean> {
    return vi
      .waitFor(
        async () => {
          const jobs = await Promise.all(tokens.map((t) => this.deps.jobs.get(MODEL_SITE, t)));
          const ended = jobs.every((j) => j && isTerminal(j.state));
          const idle = [...this.lives.values()].every((ws) => ws.length === 0) && this.running.size === 0;
          if (!(ended && idle)) throw new Error('jobs running or workers left');
        },
        { timeout: ms, interval: 100 },
      )
      .then(
        () => true,
        () => false,
      );
  }
}

/** The local API (HTTP) in front of the real upload and status handlers on `deps`; every caller is MODEL_SITE. */
export async function modelApi(deps: PipelineDeps): Promise<LocalApi> {
  const upload = createUploadHandler(deps) as (
    e: APIGatewayProxyEvent,
    c: ReturnType<typeof localContext>,
  ) => Promise<APIGatewayProxyResult>;
  const status = createStatusHandler(deps) as (
    e: APIGatewayProxyEvent,
    c: ReturnType<typeof localContext>,
  ) => Promise<APIGatewayProxyResult>;
  const api = new LocalApi(
    API_ROUTES.flatMap((r) =>
      r.function === 'console'
        ? []
        : [
            {
              method: r.method,
              resource: r.path,
              auth: r.auth,
              handler: (e: APIGatewayProxyEvent) =>
                (r.function === 'upload' ? upload : status)(e, localContext(`model-${r.function}`)),
            },
          ],
    ),
    async () => MODEL_SITE,
    'local',
  );
  await api.listen();
  return api;
}

/** The first cell of a record's raw CSV text (errors.csv `raw`), if it reads as one whole record (3 cells). */
function firstCell(raw: string): string | undefined {
  try {
    const rows = parse(raw, { relax_column_count: true, relax_quotes: true }) as string[][];
    return rows.length === 1 && rows[0]?.length === 3 ? rows[0][0] : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The world the commands act on

interface Family {
  readonly index: number;
  readonly spec: UploadSpec;
  /** Record n of the upload is ids[n - 1]. */
  readonly ids: readonly string[];
  readonly fieldsById: ReadonlyMap<string, readonly string[]>;
  /** Distinct tokens: the upload's, then each a retry answered with. */
  readonly tokens: string[];
  /** A retry's token (when not the token it was asked for) → the token asked for. */
  readonly parents: Map<string, string>;
}

interface Answer {
  readonly status: number;
  readonly body: { token?: string; state?: string; error?: { code?: string; message?: string } };
}

export class ModelWorld {
  readonly families: Family[] = [];
  /** Answers no promise allows (a 5xx, an upload refused, a job stuck). */
  readonly problems: string[] = [];
  readonly timeline: string[] = [];
  /** What the checks read (jobs, their states and counts, effects), for MODEL_VERBOSE. */
  readonly summary: string[] = [];
  private readonly t0 = Date.now();

  constructor(
    readonly fleet: ModelFleet,
    readonly apiUrl: string,
    readonly ledgerFile: string,
    /** How long a job may take to end before it counts as stuck. */
    readonly settleMs = 30_000,
  ) {}

  note(s: string): void {
    this.timeline.push(`${String(Date.now() - this.t0).padStart(6)} ms ${s}`);
  }

  private async call(method: string, path: string, body?: Buffer, contentType = 'text/csv'): Promise<Answer> {
    const res = await fetch(this.apiUrl + path, {
      method,
      headers: { authorization: 'Bearer model', ...(body ? { 'content-type': contentType } : {}) },
      ...(body ? { body } : {}),
    });
    const text = await res.text();
    let parsed: Answer['body'] = {};
    try {
      parsed = JSON.parse(text) as Answer['body'];
    } catch {
      // not JSON: kept as status only
    }
    return { status: res.status, body: parsed };
  }

  family(pick: number): Family | undefined {
    return this.families[pick % Math.max(1, this.families.length)];
  }

  async upload(spec: UploadSpec): Promise<void> {
    const index = this.families.length;
    const rows = fieldsOf(index, spec);
    const q = new URLSearchParams({
      processor: LEDGER_PROCESSOR,
      fileName: `model-${index}.csv`,
      workers: String(spec.workers),
      concurrency: '2',
      simulateDelayMs: String(spec.delayMs),
      ...(spec.maxFailureRate !== undefined ? { maxFailureRate: String(spec.maxFailureRate) } : {}),
    });
    const a = await this.call('POST', `/jobs?${q}`, fileOf(rows, spec), spec.contentType);
    this.note(`upload ${index} (${describeUpload(spec)}) → ${a.status} ${a.body.token ?? ''}`);
    // Refusing a body that is not text/csv is allowed (the bytes are the caller's to send right).
    if (a.status === 415 && spec.contentType !== 'text/csv') return;
    if (a.status !== 202 || !a.body.token) {
      this.problems.push(`upload ${index} answered ${a.status} ${JSON.stringify(a.body.error ?? a.body)}`);
      return;
    }
    const body = rows.slice(1);
    this.families.push({
      index,
      spec,
      ids: body.map((r) => r[0]!),
      fieldsById: new Map(body.map((r) => [r[0]!, r])),
      tokens: [a.body.token],
      parents: new Map(),
    });
    this.fleet.watch(a.body.token);
  }

  async cancel(pick: number, afterMs: number): Promise<void> {
    const f = this.family(pick);
    if (!f) return;
    await sleep(afterMs);
    const token = f.tokens.at(-1)!;
    const a = await this.call('DELETE', `/jobs/${token}`);
    this.note(`cancel ${f.index} ${token} → ${a.status} ${a.body.state ?? a.body.error?.code ?? ''}`);
    if (![200, 202, 409].includes(a.status))
      this.problems.push(`cancel of ${token} answered ${a.status} ${JSON.stringify(a.body)}`);
  }

  async kill(pick: number, worker: number, afterMs: number): Promise<void> {
    const f = this.family(pick);
    if (!f) return;
    await sleep(afterMs);
    const token = f.tokens.at(-1)!;
    const killed = this.fleet.kill(token, worker);
    this.note(`kill -9 a worker of ${f.index} ${token}: ${killed ? 'killed' : 'none running'}`);
  }

  /** A user's retry of a finished job: once, or twice at once; `first`: of the upload's job, else of the latest. */
  async retry(pick: number, twice: boolean, first: boolean): Promise<void> {
    const f = this.family(pick);
    if (!f) return;
    const token = first ? f.tokens[0]! : f.tokens.at(-1)!;
    if (!(await this.fleet.settle([token], this.settleMs))) {
      this.problems.push(`job ${token} did not end within ${this.settleMs} ms (before a retry)`);
      return;
    }
    const answers = await Promise.all(
      Array.from({ length: twice ? 2 : 1 }, () => this.call('POST', `/jobs/${token}/retry`)),
    );
    for (const a of answers) {
      this.note(
        `retry ${f.index} ${token}${twice ? ' (twice at once)' : ''} → ${a.status} ` +
          `${a.body.token ?? ''} ${a.body.error?.code ?? ''}`,
      );
      if (a.status === 409) continue;
      if (a.status !== 202 || !a.body.token) {
        this.problems.push(`retry of ${token} answered ${a.status} ${JSON.stringify(a.body)}`);
        continue;
      }
      const t = a.body.token;
      if (!f.tokens.includes(t)) f.tokens.push(t);
      else f.tokens.push(...f.tokens.splice(f.tokens.indexOf(t), 1));
      if (t !== token) f.parents.set(t, token);
      this.fleet.watch(t);
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // The checks

  async settleAll(ms: number): Promise<void> {
    const tokens = this.families.flatMap((f) => f.tokens);
    if (!(await this.fleet.settle(tokens, ms))) {
      this.problems.push(`jobs did not all end within ${ms} ms`);
      for (const t of tokens) {
        const e = this.fleet.finalizeErrors.get(t);
        if (e) this.problems.push(`job ${t}: its finalize fails: ${e}`);
      }
    }
  }

  /** Every broken promise of the sequence (empty when all held). */
  async check(): Promise<string[]> {
    const out = [...this.problems];
    const ledger = readLedger(this.ledgerFile);
    const effectsById = new Map<string, { token: string; n: number }[]>();
    const known = new Map<string, Family>();
    for (const f of this.families) for (const id of f.ids) known.set(id, f);
    for (const e of ledger) {
      const id = e.fields[0] ?? '';
      const f = known.get(id);
      if (!f) {
        out.push(
          `the processor saw a record that was never uploaded: ${JSON.stringify(e.fields)} (${e.token} #${e.n})`,
        );
        continue;
      }
      effectsById.set(id, [...(effectsById.get(id) ?? []), { token: e.token, n: e.n }]);
      const want = f.fieldsById.get(id)!;
      if (JSON.stringify(e.fields) !== JSON.stringify(want))
        out.push(
          `upload ${f.index} ${id}: the processor saw ${JSON.stringify(e.fields)}, uploaded ${JSON.stringify(want)}`,
        );
    }
    for (const [id, effects] of effectsById) {
      if (effects.length > 1)
        out.push(
          `${id}: effect happened ${effects.length} times (${effects.map((e) => `${e.token} #${e.n}`).join(', ')})`,
        );
    }
    for (const f of this.families) out.push(...(await this.checkFamily(f, effectsById)));
    this.summary.push(`${ledger.length} effects in the ledger`);
    return out;
  }

  private async checkFamily(
    f: Family,
    effectsById: ReadonlyMap<string, readonly { token: string; n: number }[]>,
  ): Promise<string[]> {
    const out: string[] = [];
    const say = (s: string) => out.push(`upload ${f.index}: ${s}`);
    const settled = new Map<string, string[]>();
    const idsOfToken = new Map<string, readonly (string | undefined)[]>();
    const outcomesOfToken = new Map<string, { successes: readonly number[]; errors: readonly ErrorLine[] }>();

    for (const token of f.tokens) {
      // Record n of this job → the uploaded record: the upload's numbering, or (a retry that made a new job) the
      // parent's records a retry runs, in their order — there, the id a record carries (its result's fields, its
      // errors.csv raw text) when it names one of the upload's records, so one record cut in two does not shift
      // every record after it.
      let byOrder: readonly (string | undefined)[] = f.ids;
      const parent = f.parents.get(token);
      if (parent) {
        const po = outcomesOfToken.get(parent);
        const pids = idsOfToken.get(parent) ?? [];
        byOrder = (po?.errors ?? [])
          .filter((e) => RETRIED_CODES.includes(e.code))
          .sort((a, b) => a.n - b.n)
          .map((e) => pids[e.n - 1]);
      }

      const view = await this.view(token);
      if (!view) {
        say(`job ${token}: no view`);
        continue;
      }
      const { total, succeeded, failed, rejected } = view.rows;
      this.summary.push(
        `upload ${f.index} job ${token}: ${view.state} ${view.error?.code ?? ''} ${JSON.stringify(view.rows)}`,
      );
      if (!isTerminal(view.state)) say(`job ${token} is ${view.state}, not ended`);
      if (succeeded + failed + rejected !== total)
        say(`job ${token}: counts do not add up: ${JSON.stringify(view.rows)}`);
      if (!view.download?.url) {
        say(`job ${token} (${view.state}) has no zip`);
        continue;
      }
      const zip = Buffer.from(await (await fetch(view.download.url)).arrayBuffer());
      const entries = await readZip(zip);
      const carried = new Map<number, string>();
      if (parent) {
        for (const e of entries) {
          const m = /^rows\/(\d+)\.json$/.exec(e.name);
          const id = m ? (JSON.parse(e.data.toString('utf8')) as { fields: string[] }).fields[0] : undefined;
          if (m && id && f.fieldsById.has(id)) carried.set(Number(m[1]), id);
        }
        const errorsCsv = entries.find((e) => e.name === 'errors.csv');
        for (const line of errorsCsv ? parseErrorsCsv(errorsCsv.data) : []) {
          const id = firstCell(line.raw);
          if (id && f.fieldsById.has(id) && !carried.has(line.n)) carried.set(line.n, id);
        }
      }
      // A retry job with more or fewer records than were retried cut or joined some: records that carry no id are
      // then not matched by their place (they would all shift).
      const inOrder = total === byOrder.length;
      const ids = Array.from(
        { length: Math.max(total, byOrder.length) },
        (_, i) => carried.get(i + 1) ?? (inOrder ? byOrder[i] : undefined),
      );
      idsOfToken.set(token, ids);
      const c = checkRecords(entries, total, {
        content: (n, data) => {
          const id = ids[n - 1];
          const want = id === undefined ? undefined : f.fieldsById.get(id);
          const got = (JSON.parse(data.toString('utf8')) as { fields: string[] }).fields;
          if (!want) return `record ${n} is no uploaded record: ${JSON.stringify(got)}`;
          return JSON.stringify(got) === JSON.stringify(want)
            ? undefined
            : `holds ${JSON.stringify(got)}, uploaded ${JSON.stringify(want)}`;
        },
      });
      const few = (xs: readonly unknown[]) =>
        JSON.stringify(xs.slice(0, 8)) + (xs.length > 8 ? ` …${xs.length}` : '');
      if (c.missing.length) say(`job ${token}: records in neither results nor errors.csv: ${few(c.missing)}`);
      if (c.duplicated.length) say(`job ${token}: records with two outcomes: ${few(c.duplicated)}`);
      if (c.unexpected.length) say(`job ${token}: unexpected entries: ${few(c.unexpected)}`);
      if (c.corrupted.length) say(`job ${token}: values not as uploaded: ${few(c.corrupted)}`);
      const m = c.manifest;
      if (!m) say(`job ${token}: no manifest`);
      else if (
        m.total !== total ||
        m.succeeded !== c.counts.succeeded ||
        m.failed + m.rejected !== c.errors.length ||
        m.succeeded !== succeeded ||
        m.failed !== failed ||
        m.rejected !== rejected
      )
        say(
          `job ${token}: manifest ${JSON.stringify(m)}, view ${JSON.stringify(view.rows)}, zip ` +
            `${c.counts.succeeded} results + ${c.errors.length} lines of errors.csv`,
        );
      outcomesOfToken.set(token, { successes: c.succeeded, errors: c.errors });

      const effectsBy = (id: string) => (effectsById.get(id) ?? []).filter((e) => e.token === token).length;
      const settle = (id: string, how: string) => settled.set(id, [...(settled.get(id) ?? []), how]);
      for (const n of c.succeeded) {
        const id = ids[n - 1];
        if (!id) continue;
        settle(id, `${token} #${n} succeeded`);
        if (f.fieldsById.get(id)?.[1] === 'refuse') say(`${id} (${token} #${n}) succeeded although refused`);
        if (effectsBy(id) !== 1)
          say(`${id} (${token} #${n}) succeeded with ${effectsBy(id)} effects of this job`);
      }
      for (const e of c.errors) {
        const id = ids[e.n - 1];
        if (!id) {
          say(
            `job ${token}: errors.csv record ${e.n} (${e.code}) is no uploaded record; raw ${JSON.stringify(e.raw)}`,
          );
          continue;
        }
        if (!RETRIED_CODES.includes(e.code)) settle(id, `${token} #${e.n} ${e.code}`);
        else if (effectsBy(id) > 0)
          say(`${id} (${token} #${e.n}) reported ${e.code} although its effect happened`);
        if (e.code === REFUSED_CODE && f.fieldsById.get(id)?.[1] !== 'refuse')
          say(`${id} (${token} #${e.n}) refused although its value is not`);
      }
    }
    for (const [id, hows] of settled) {
      if (hows.length > 1)
        say(`${id} ended in ${hows.length} outcomes across the attempts: ${hows.join('; ')}`);
    }
    return out;
  }

  private async view(token: string): Promise<JobView | undefined> {
    const res = await fetch(`${this.apiUrl}/jobs/${token}`, { headers: { authorization: 'Bearer model' } });
    return res.ok ? ((await res.json()) as JobView) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Commands

export interface Model {
  uploads: number;
}

type Cmd = fc.AsyncCommand<Model, ModelWorld>;

class Upload implements Cmd {
  constructor(readonly spec: UploadSpec) {}
  check = () => true;
  async run(m: Model, w: ModelWorld) {
    m.uploads++;
    await w.upload(this.spec);
  }
  toString = () => `upload(${describeUpload(this.spec)})`;
}

class Cancel implements Cmd {
  constructor(
    readonly pick: number,
    readonly afterMs: number,
  ) {}
  check = (m: Readonly<Model>) => m.uploads > 0;
  run = (_m: Model, w: ModelWorld) => w.cancel(this.pick, this.afterMs);
  toString = () => `cancel(job ${this.pick}, after ${this.afterMs} ms)`;
}

class Kill implements Cmd {
  constructor(
    readonly pick: number,
    readonly worker: number,
    readonly afterMs: number,
  ) {}
  check = (m: Readonly<Model>) => m.uploads > 0;
  run = (_m: Model, w: ModelWorld) => w.kill(this.pick, this.worker, this.afterMs);
  toString = () => `kill9(job ${this.pick}, worker ${this.worker}, after ${this.afterMs} ms)`;
}

class Retry implements Cmd {
  constructor(
    readonly pick: number,
    readonly twice: boolean,
    readonly first: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.uploads > 0;
  run = (_m: Model, w: ModelWorld) => w.retry(this.pick, this.twice, this.first);
  toString = () =>
    `retry(job ${this.pick}${this.twice ? ', twice at once' : ''}${this.first ? ', of the first attempt' : ''})`;
}

/** The end of a sequence with retries: every upload's latest job retried, as a user would once it ended short. */
class RetryAll implements Cmd {
  constructor(readonly twice: boolean) {}
  check = (m: Readonly<Model>) => m.uploads > 0;
  run = async (_m: Model, w: ModelWorld) => {
    await Promise.all(w.families.map((f) => w.retry(f.index, this.twice, false)));
  };
  toString = () => `retryAll(${this.twice ? 'twice at once' : 'once'})`;
}

class Wait implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  run = async () => {
    await sleep(this.ms);
  };
  toString = () => `wait(${this.ms} ms)`;
}

export interface ModelOptions {
  /** Include retries (POST /jobs/{token}/retry). */
  readonly retries: boolean;
  readonly maxRecords: number;
  readonly maxCommands: number;
  /** Uploads also with other Content-Types than text/csv (each must be refused with 415 or kept byte-exact). */
  readonly contentTypes?: boolean;
  /** A job that has not ended this long (after the last command, or before a retry) is stuck. @default 30 s */
  readonly settleMs?: number;
}

export function commandsArb(o: ModelOptions) {
  const pick = fc.nat({ max: 7 });
  const cancel = fc.tuple(pick, fc.integer({ min: 0, max: 700 })).map(([p, ms]) => new Cancel(p, ms));
  // Cancels and retries weigh double (each listed twice): most sequences then cut a job short and retry it.
  const arbs: fc.Arbitrary<Cmd>[] = [
    uploadArb(o.maxRecords, o.contentTypes).map((s) => new Upload(s)),
    cancel,
    cancel,
    fc
      .tuple(pick, fc.nat({ max: 3 }), fc.integer({ min: 0, max: 700 }))
      .map(([p, k, ms]) => new Kill(p, k, ms)),
    fc.integer({ min: 0, max: 500 }).map((ms) => new Wait(ms)),
  ];
  const retry = fc
    .tuple(pick, fc.boolean(), fc.boolean())
    .map(([p, twice, first]) => new Retry(p, twice, first));
  if (o.retries) arbs.push(retry, retry);
  return fc.tuple(
    uploadArb(o.maxRecords, o.contentTypes).map((s) => new Upload(s)),
    fc.commands(arbs, { maxCommands: o.maxCommands, replayPath: process.env.FUZZ_PATH ?? undefined }),
    o.retries ? fc.boolean().map((twice): Cmd[] => [new RetryAll(twice)]) : fc.constant<Cmd[]>([]),
  );
}

/** Problems grouped by kind (ids, tokens, numbers and values left out), with how many and the first 3 of each. */
function byKind(problems: readonly string[]): string[] {
  const kinds = new Map<string, string[]>();
  for (const p of problems) {
    const kind = p
      .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, 'T')
      .replace(/\[.*\]/g, '[…]')
      .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
      .replace(/u\d+-\d+/g, 'ID')
      .replace(/\d+/g, 'N');
    kinds.set(kind, [...(kinds.get(kind) ?? []), p]);
  }
  return [...kinds.values()].flatMap((ps) => [
    `${ps.length} × ${ps[0]}`,
    ...ps.slice(1, 3).map((p) => `      ${p}`),
  ]);
}

/** Thrown by a run that starts after the time budget: ends the check, and is not a failure. */
class TimeUp extends Error {}

export interface ModelRun {
  readonly seed: number;
  readonly runs: number;
  readonly failure?: string;
}

/**
 * Runs the property: random sequences until `ms` has passed (or `numRuns` sequences), each followed by the
 * checks. The seed is printed first; a failure names the seed and path to replay it
 * (`FUZZ_SEED=<seed> FUZZ_PATH=<path>`), the sequence and what happened, and every broken promise.
 */
export async function runModel(
  fleet: ModelFleet,
  apiUrl: string,
  ledgerDir: string,
  o: ModelOptions & { readonly numRuns: number; readonly ms: number; readonly label: string },
): Promise<ModelRun> {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(0, 2 ** 31);
  process.stderr.write(`promises model (${o.label}): seed ${seed}; replay with FUZZ_SEED=${seed}\n`);
  let run = 0;
  // A sequence is never cut short (fast-check's interruptAfterTimeLimit would leave its jobs running into the next
  // one): once `ms` has passed, the next run ends the check with TimeUp, which is no failure.
  const deadline = Date.now() + o.ms;
  const property = fc.asyncProperty(commandsArb(o), async ([first, cmds, last]) => {
    if (Date.now() > deadline) throw new TimeUp();
    const ledgerFile = `${ledgerDir}/ledger-${o.label.replace(/\W+/g, '-')}-${++run}.jsonl`;
    process.env[LEDGER_FILE_ENV] = ledgerFile;
    const world = new ModelWorld(fleet, apiUrl, ledgerFile, o.settleMs);
    await fc.asyncModelRun(() => ({ model: { uploads: 0 }, real: world }), [first, ...cmds, ...last]);
    world.note('commands done');
    await world.settleAll(world.settleMs);
    world.note('every job ended');
    const problems = await world.check();
    if (process.env.MODEL_VERBOSE)
      process.stderr.write(
        `sequence ${run}:\n  ${world.timeline.join('\n  ')}\n  ${world.summary.join('\n  ')}\n`,
      );
    if (problems.length > 0) {
      throw new Error(
        `${problems.length} broken promises:\n  ${byKind(problems).join('\n  ')}` +
          `\nwhat happened:\n  ${world.timeline.join('\n  ')}\n  ${world.summary.join('\n  ')}`,
      );
    }
  });
  const details = await fc.check(property, {
    seed,
    ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
    numRuns: o.numRuns,
    endOnFailure: true,
  });
  if (!details.failed || details.errorInstance instanceof TimeUp) return { seed, runs: run };
  const error =
    details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  return {
    seed,
    runs: run,
    failure:
      `promises model (${o.label}) failed in sequence ${run}; replay with ` +
      `FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath ?? ''}\n` +
      `sequence: ${(details.counterexample?.[0] ?? []).map(String).join(', ')}\n` +
      error,
  };
}

export interface ModelSetup {
  readonly fleet: ModelFleet;
  readonly api: LocalApi;
  /** Where the sequences' ledgers go. */
  readonly dir: string;
}

/**
 * The fleet and the API of a test file on its emulators (after `useTestAws`), started before its tests and stopped
 * after. The test file must give the pipeline the ledger processor: `vi.mock('../../core/processors/index.ts',
 * async (original) => (await import('./ledger-processor.ts')).withLedgerProcessor(await original()))`.
 */
export function useModel(aws: TestAws): ModelSetup {
  const setup = {} as { fleet: ModelFleet; api: LocalApi; dir: string };
  beforeAll(async () => {
    const launcher = new ModelLauncher();
    setup.fleet = new ModelFleet(testDeps(aws, { launcher }), launcher);
    setup.fleet.start();
    setup.api = await modelApi(setup.fleet.deps);
    setup.dir = mkdtempSync(join(tmpdir(), 'rowfleet-model-'));
  });
  afterAll(async () => {
    await setup.fleet?.stop();
    await setup.api?.close();
    if (setup.dir) rmSync(setup.dir, { recursive: true, force: true });
  });
  return setup;
}
