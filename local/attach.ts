/**
 * How a command uses the local runtime of its state directory: it attaches to the one running (named in
 * `<state>/runtime.json`, see ownership.ts), or starts one in the background (local/daemon.ts) and attaches to
 * it. Commands started together never start two: the start is serialised by a lock file, and the runtime itself
 * takes the state directory's lock. The runtime stops once the last command detaches (a killed command detaches
 * too); a command that detaches last waits for that stop, so nothing is left running when it returns.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import type { PipelineDeps } from '../core/deps.ts';
import type { UsageMailDeps, UsageMailInput, UsageMailResult } from '../core/usage/mail.ts';
import { ownerAlive, privateStateDir, readOwner, sameProcess, type RuntimeOwner } from './ownership.ts';
import { CONSOLE_PATH } from '../core/intake/console.ts';
import { getStage } from '../config/index.ts';
import { runtimeProcess } from './entries.ts';
import { ENV } from '../config/env.ts';

/**
 * The attached runtime's pipeline side (the SDK clients, the handlers: most of what a command loads), loaded while
 * the runtime starts or answers the attach, so a command waits for the longer of the two rather than both in turn.
 */
let attachedModule: Promise<typeof import('./attached.ts')> | undefined;
const loadAttached = () => (attachedModule ??= import('./attached.ts'));

const START_TIMEOUT_MS = 90_000;

export interface AttachOptions {
  readonly stateDir: string;
  readonly endpoint?: string;
  /**
   * The stage's worker budget for this runtime (`--max-workers`): taken by a runtime this command starts; a
   * runtime already running keeps its own (a note says so). @default the local stage's budget (config/)
   */
  readonly maxWorkers?: number;
}

/** A command's view of the runtime it is attached to, through its API (what `run`, `retry`, `loadtest` use). */
export interface AttachedApi {
  readonly stage: string;
  readonly stateDir: string;
  readonly apiUrl: string;
  /** The web console, served by the runtime's local API. */
  readonly consoleUrl: string;
  readonly endpoints: Record<string, string>;
  /** Whether this command started the runtime (false: it joined one already running). */
  readonly started: boolean;
  /** The local API token of a site (issued by the runtime, kept in the state directory). */
  tokenFor(site: string): Promise<string>;
  /**
   * Settles when the runtime ends this attachment without this command detaching: it died (kill -9, a crash) or
   * stopped. A command that goes on attaches again ({@link attachRuntime}: the runtime is started again and
   * resumes its jobs) or ends with an error.
   */
  readonly lost: Promise<void>;
  /** Detaches; when this was the last command, waits until the runtime has stopped (its state saved). */
  detach(): Promise<void>;
}

/** A command's view of the runtime it is attached to, its resources addressed directly too (local/attached.ts). */
export interface AttachedRuntime extends AttachedApi {
  /** The embedded SES emulator's mail viewer; undefined on an external endpoint. */
  readonly mailViewerUrl?: string;
  /** The pipeline's dependencies, addressing the runtime's resources; workers are launched by the runtime. */
  readonly deps: PipelineDeps;
  readonly mailDeps: UsageMailDeps;
  usageMail(input: UsageMailInput): Promise<UsageMailResult>;
  /** A new API token bound to `site`. */
  issueToken(site: string): Promise<string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Attaches to the state directory's runtime, starting it when none runs, with its resources addressed from this
 * process too (the AWS SDK clients: loaded while the runtime starts).
 */
export async function attachRuntime(o: AttachOptions): Promise<AttachedRuntime> {
  const { owner, link, started, budgetEnv } = await attachLink(o, true);
  return (await loadAttached()).attached({ ...apiView(owner, link, started), budgetEnv });
}

/**
 * Attaches to the state directory's runtime, starting it when none runs, to use it through its API only: this
 * process loads nothing of the pipeline (a `run` waits for the runtime, not for its own modules too).
 */
export async function attachApi(o: AttachOptions): Promise<AttachedApi> {
  const { owner, link, started } = await attachLink(o, false);
  return apiView(owner, link, started);
}

async function attachLink(
  o: AttachOptions,
  pipeline: boolean,
): Promise<{ owner: RuntimeOwner; link: Link; started: boolean; budgetEnv: Record<string, string> }> {
  const stateDir = resolve(o.stateDir);
  // `--max-workers N`: the budget of a runtime this command starts (its spawn env) and of this command's deps.
  const budgetEnv: Record<string, string> =
    o.maxWorkers !== undefined ? { [ENV.maxWorkers]: String(o.maxWorkers) } : {};
  privateStateDir(stateDir);
  const deadline = Date.now() + START_TIMEOUT_MS;
  let started = false;
  for (;;) {
    const owner = readOwner(stateDir);
    if (owner && ownerAlive(owner)) {
      if ((owner.endpoint ?? '') !== (o.endpoint ?? '')) {
        throw new Error(
          `the local runtime of ${stateDir} runs against ${owner.endpoint ?? 'the embedded emulators'}; ` +
            `use the same --endpoint, or another --state-dir`,
        );
      }
      if (pipeline) void loadAttached();
      const link = await connect(owner).catch(() => undefined);
      if (link) {
        const theirs = owner.env[ENV.maxWorkers];
        if (!started && o.maxWorkers !== undefined && theirs !== String(o.maxWorkers)) {
          process.stderr.write(
            `rowfleet: the local runtime of ${stateDir} is already running with ${theirs ?? 'the configured'} ` +
              `worker budget; --max-workers ${o.maxWorkers} applies once every command of it has ended\n`,
          );
        }
        return { owner, link, started, budgetEnv };
      }
    } else if (await startRuntime(stateDir, o.endpoint, pipeline, budgetEnv)) {
      // Up and named in the state directory: attach at once.
      started = true;
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`could not start or reach the local runtime of ${stateDir} (see ${logFile(stateDir)})`);
    }
    await sleep(150);
  }
}

const logFile = (stateDir: string) => join(stateDir, 'logs', 'runtime.log');

/**
 * Starts the runtime in the background, unless another command does it first (one at a time, under a lock).
 * Returns once it names itself in the state directory; throws with the end of its log if it exits first.
 */
async function startRuntime(
  stateDir: string,
  endpoint: string | undefined,
  pipeline: boolean,
  budgetEnv: Record<string, string>,
): Promise<boolean> {
  const release = await lockfile.lock(stateDir, {
    lockfilePath: join(stateDir, 'start.lock'),
    stale: 15_000,
    retries: { retries: 300, minTimeout: 100, maxTimeout: 300 },
    realpath: false,
  });
  try {
    const owner = readOwner(stateDir);
    if (owner && ownerAlive(owner)) return false;
    mkdirSync(join(stateDir, 'logs'), { recursive: true, mode: 0o700 });
    const log = openSync(logFile(stateDir), 'a', 0o600);
    const daemon = runtimeProcess('daemon');
    const child = spawn(
      process.execPath,
      [...daemon.execArgv, daemon.file, stateDir, ...(endpoint ? [endpoint] : [])],
      {
        detached: true,
        stdio: ['ignore', log, log],
        env: {
          ...process.env,
          ...budgetEnv,
          POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
          // What the runtime would take itself (local/resources.ts setLocalAwsDefaults), known here already.
          AWS_REGION: process.env.AWS_REGION ?? getStage('local').region,
        },
      },
    );
    closeSync(log);
    child.unref();
    if (pipeline) void loadAttached();
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const o = readOwner(stateDir);
      if (o && o.pid === child.pid && ownerAlive(o)) return true;
      if (exited !== undefined) {
        throw new Error(`the local runtime could not start (exit ${exited}):\n${tail(logFile(stateDir))}`);
      }
      if (Date.now() > deadline)
        throw new Error(`the local runtime did not start in time (see ${logFile(stateDir)})`);
      // A small file read: looking often costs nothing, and every command that starts the runtime waits here.
      await sleep(20);
    }
  } finally {
    await release();
  }
}

function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export interface Link {
  readonly id: string;
  readonly req: ClientRequest;
  /** Settles when the attachment's answer ends (the runtime closed it, or its process is gone). */
  readonly closed: Promise<void>;
}

/** How long an attach may wait for the runtime's first answer before it is tried again. */
const ATTACH_ANSWER_MS = 10_000;

/**
 * Opens the attachment: the control answer stays open while this command is attached. An answer that does not
 * start within {@link ATTACH_ANSWER_MS} fails the attempt (the caller tries again), so a command never waits on
 * one request for ever.
 */
function connect(owner: RuntimeOwner): Promise<Link> {
  const id = randomUUID();
  return new Promise((res, rej) => {
    const req = request(`${owner.controlUrl}/attach?id=${id}`, {
      headers: { 'x-rowfleet-secret': owner.secret },
    });
    req.setTimeout(ATTACH_ANSWER_MS, () => req.destroy(new Error('the runtime did not answer the attach')));
    req.once('response', (r) => {
      // Attached or refused: the answer has come, and an attachment stays quiet as long as it lasts.
      req.setTimeout(0);
      if (r.statusCode !== 200) {
        r.resume();
        return rej(new Error(`attach refused: HTTP ${r.statusCode}`));
      }
      // The attachment never keeps this process alive by itself.
      req.socket?.unref();
      r.on('data', () => undefined);
      r.on('error', () => undefined);
      const closed = new Promise<void>((done) => {
        r.once('close', () => done());
        req.once('close', () => done());
      });
      res({ id, req, closed });
    });
    req.once('error', rej);
    req.end();
  });
}

/** Talks to the runtime's control endpoint (local/control.ts). */
export async function control(
  owner: RuntimeOwner,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await fetch(`${owner.controlUrl}${path}`, {
    method,
    headers: { 'x-rowfleet-secret': owner.secret, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`local runtime control ${path}: HTTP ${res.status}`);
  return res.json();
}

/** The attachment as a command sees it: the runtime's API, its sites' tokens, the attachment's end. */
function apiView(owner: RuntimeOwner, link: Link, started: boolean): AttachedApi & { owner: RuntimeOwner } {
  let detached: Promise<void> | undefined;
  const lost = link.closed.then(() =>
    // Ended by this command's own detach: not lost (the promise never settles).
    detached ? new Promise<void>(() => undefined) : undefined,
  );
  return {
    owner,
    lost,
    stage: owner.stage,
    stateDir: owner.stateDir,
    apiUrl: owner.apiUrl,
    consoleUrl: owner.apiUrl + CONSOLE_PATH,
    endpoints: owner.endpoints,
    started,
    async tokenFor(site) {
      const saved = JSON.parse(readFileSync(join(owner.stateDir, 'api-tokens.json'), 'utf8')) as Record<
        string,
        string
      >;
      const token = saved[site];
      if (!token) throw new Error(`no local API token for site ${site}`);
      return token;
    },
    detach() {
      detached ??= (async () => {
        const r = (await control(owner, 'POST', `/detach?id=${link.id}`).catch(() => ({ remaining: 0 }))) as {
          remaining: number;
        };
        link.req.destroy();
        if (r.remaining > 0) return;
        // The last one: the runtime stops now; wait for it (workers finish their chunks, state is saved).
        const deadline = Date.now() + 60_000;
        while (sameProcess(owner.pid, owner.processStart) && Date.now() < deadline) await sleep(100);
      })();
      return detached;
    },
  };
}
