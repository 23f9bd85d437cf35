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
import { fileURLToPath } from 'node:url';
import lockfile from 'proper-lockfile';
import type { PipelineDeps } from '../core/deps.ts';
import { buildDeps, fromEnv } from '../core/deps.ts';
import { resetClients } from '../core/aws/clients.ts';
import { ApiTokens } from '../core/intake/tokens.ts';
import {
  LaunchFailedError,
  type LaunchRequest,
  type TaskInfo,
  type TaskLauncher,
} from '../core/aws/task-launcher.ts';
import {
  usageMailDepsFromEnv,
  type UsageMailDeps,
  type UsageMailInput,
  type UsageMailResult,
} from '../core/usage/mail.ts';
import { createUsageMailHandler } from '../lambdas/usage-mail/handler.ts';
import { localContext } from '../lambdas/shared/middleware.ts';
import { ownerAlive, readOwner, sameProcess, type RuntimeOwner } from './ownership.ts';
import { setLocalAwsDefaults } from './resources.ts';
import { mailViewerUrl, privateStateDir } from './emulator-gate.ts';
import { CONSOLE_PATH } from '../core/intake/console.ts';

const TSX = import.meta.resolve('tsx');
const DAEMON = fileURLToPath(new URL('./daemon.ts', import.meta.url));
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

/** A command's view of the runtime it is attached to. */
export interface AttachedRuntime {
  readonly stage: string;
  readonly stateDir: string;
  readonly apiUrl: string;
  /** The web console, served by the runtime's local API. */
  readonly consoleUrl: string;
  readonly endpoints: Record<string, string>;
  /** The embedded SES emulator's mail viewer; undefined on an external endpoint. */
  readonly mailViewerUrl?: string;
  /** Whether this command started the runtime (false: it joined one already running). */
  readonly started: boolean;
  /** The pipeline's dependencies, addressing the runtime's resources; workers are launched by the runtime. */
  readonly deps: PipelineDeps;
  readonly mailDeps: UsageMailDeps;
  usageMail(input: UsageMailInput): Promise<UsageMailResult>;
  /** The local API token of a site (issued by the runtime, kept in the state directory). */
  tokenFor(site: string): Promise<string>;
  /** A new API token bound to `site`. */
  issueToken(site: string): Promise<string>;
  /**
   * Settles when the runtime ends this attachment without this command detaching: it died (kill -9, a crash) or
   * stopped. A command that goes on attaches again ({@link attachRuntime}: the runtime is started again and
   * resumes its jobs) or ends with an error.
   */
  readonly lost: Promise<void>;
  /** Detaches; when this was the last command, waits until the runtime has stopped (its state saved). */
  detach(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Attaches to the state directory's runtime, starting it when none runs. */
export async function attachRuntime(o: AttachOptions): Promise<AttachedRuntime> {
  const stateDir = resolve(o.stateDir);
  // `--max-workers N`: the budget of a runtime this command starts (its spawn env) and of this command's deps.
  const budgetEnv: Record<string, string> =
    o.maxWorkers !== undefined ? { ROWFLEET_MAX_WORKERS: String(o.maxWorkers) } : {};
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
      const link = await connect(owner).catch(() => undefined);
      if (link) {
        const theirs = owner.env.ROWFLEET_MAX_WORKERS;
        if (!started && o.maxWorkers !== undefined && theirs !== String(o.maxWorkers)) {
          process.stderr.write(
            `rowfleet: the local runtime of ${stateDir} is already running with ${theirs ?? 'the configured'} ` +
              `worker budget; --max-workers ${o.maxWorkers} applies once every command of it has ended\n`,
          );
        }
        return attached(owner, link, started, budgetEnv);
      }
    } else {
      started = (await startRuntime(stateDir, o.endpoint, budgetEnv)) || started;
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
    const child = spawn(
      process.execPath,
      ['--import', TSX, DAEMON, stateDir, ...(endpoint ? [endpoint] : [])],
      {
        detached: true,
        stdio: ['ignore', log, log],
        env: {
          ...process.env,
          ...budgetEnv,
          POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
        },
      },
    );
    closeSync(log);
    child.unref();
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
      await sleep(100);
    }
  } finally {
    await release();
  }
}

function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

interface Link {
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

async function control(owner: RuntimeOwner, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${owner.controlUrl}${path}`, {
    method,
    headers: { 'x-rowfleet-secret': owner.secret, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`local runtime control ${path}: HTTP ${res.status}`);
  return res.json();
}

/** Workers are the runtime's child processes: an attached command launches them through it. */
class RuntimeLauncher implements TaskLauncher {
  constructor(private readonly owner: RuntimeOwner) {}
  async launch(req: LaunchRequest): Promise<string[]> {
    const r = (await control(this.owner, 'POST', '/launch', req)) as {
      started: string[];
      failed?: number;
      error?: string;
    };
    if (r.failed) throw new LaunchFailedError(r.started, r.failed, r.error ?? 'launch failed');
    return r.started;
  }
  async stop(site: string, token: string): Promise<number> {
    return ((await control(this.owner, 'POST', '/stop', { site, token })) as { stopped: number }).stopped;
  }
  async list(): Promise<TaskInfo[]> {
    return ((await control(this.owner, 'GET', '/tasks')) as { tasks: TaskInfo[] }).tasks;
  }
}

function attached(
  owner: RuntimeOwner,
  link: Link,
  started: boolean,
  budgetEnv: Record<string, string>,
): AttachedRuntime {
  // This process addresses the runtime's emulators and resources as its own processes do.
  setLocalAwsDefaults(owner.stage);
  // Attached again to a runtime started since (new ports): the clients made for the last one are forgotten.
  if (
    Object.entries(owner.env).some(
      ([k, v]) => k.startsWith('AWS_') && process.env[k] !== undefined && process.env[k] !== v,
    )
  )
    resetClients();
  // The SDK clients and the usage mail's deps still read the environment (the runtime's endpoints, credentials).
  Object.assign(process.env, owner.env, { ROWFLEET_RUNTIME_INSTANCE: owner.instance });
  // The runtime's own budget wins over this command's `--max-workers` (which applies to a runtime it starts).
  const config = fromEnv({ ...process.env, ...budgetEnv, ...owner.env });
  const deps = buildDeps(config, new RuntimeLauncher(owner));
  const mailDeps = usageMailDepsFromEnv();
  const usageMail = createUsageMailHandler(mailDeps);
  const tokens = new ApiTokens(deps.env.table);
  let detached: Promise<void> | undefined;
  const lost = link.closed.then(() =>
    // Ended by this command's own detach: not lost (the promise never settles).
    detached ? new Promise<void>(() => undefined) : undefined,
  );
  return {
    lost,
    stage: owner.stage,
    stateDir: owner.stateDir,
    apiUrl: owner.apiUrl,
    consoleUrl: owner.apiUrl + CONSOLE_PATH,
    endpoints: owner.endpoints,
    ...(owner.endpoints.ses ? { mailViewerUrl: mailViewerUrl(owner.endpoints) } : {}),
    started,
    deps,
    mailDeps,
    usageMail: (input) => usageMail(input, localContext('usage-mail')),
    async tokenFor(site) {
      const saved = JSON.parse(readFileSync(join(owner.stateDir, 'api-tokens.json'), 'utf8')) as Record<
        string,
        string
      >;
      const token = saved[site];
      if (!token) throw new Error(`no local API token for site ${site}`);
      return token;
    },
    issueToken: (site) => tokens.issue(site, 'cli'),
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
