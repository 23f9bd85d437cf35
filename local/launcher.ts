import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestSource } from '../web/build.ts';
import { NODE_HTTP_ALIAS, NODE_TARGET } from '../config/node.ts';
import { buildProcessors } from '../fargate-worker/build-processors.ts';
import { usersDir } from '../core/processors/users.ts';
import { commandLine } from './ownership.ts';
import { REQUIRE_BANNER } from './esbuild-commonjs.mjs';
import {
  workerEnv,
  type LaunchRequest,
  type TaskInfo,
  type TaskLauncher,
} from '../core/aws/task-launcher.ts';
import { ENV } from '../config/env.ts';
import { compileCacheEnv } from './entries.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER_ENTRY = join(ROOT, 'fargate-worker', 'main.ts');
/**
 * Inside node_modules, so the bundle's package imports resolve like the sources' do; named after its esbuild
 * target, so a bundle built for another Node is never taken for this one.
 */
const BUNDLE = join(ROOT, 'node_modules', '.cache', 'rowfleet', `fargate-worker.${NODE_TARGET}.mjs`);
/** What the worker's bundle is built from: users' processors are not in it (see workerProcessors). */
const SOURCES = ['config', 'core', 'fargate-worker'].map((d) => join(ROOT, d));
/**
 * What else the bundle is made from: this file (the recipe), and the installed packages, which are in it (`npm ci`
 * rewrites node_modules/.package-lock.json).
 */
const BUILD_FILES = [
  join(ROOT, 'local', 'launcher.ts'),
  join(ROOT, 'package-lock.json'),
  join(ROOT, 'node_modules', '.package-lock.json'),
];

/**
 * The worker as one ES module with its packages in it, as the container image builds it (fargate-worker/Dockerfile:
 * esbuild, `--main-fields=module,main`): a worker process starts without compiling TypeScript or resolving the
 * hundreds of package files the AWS SDK is made of (~0.15 s of CPU against ~0.4 s with the packages loaded from
 * node_modules and an inline source map parsed at each start; 2026-12-07, issue 22). Its source map is beside it,
 * read only when a worker runs with `NODE_OPTIONS=--enable-source-maps` (inherited from the runtime).
 * Rebuilt when a source is newer; written to a temporary name and renamed, so concurrent builds are safe.
 */
export function workerBundle(): Promise<string> {
  // One build at a time in a process: a benchmark's preparation (prepareWorkers) and a launch share it.
  building ??= buildWorkerBundle().finally(() => (building = undefined));
  return building;
}

let building: Promise<string> | undefined;

async function buildWorkerBundle(): Promise<string> {
  let built = 0;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    // not built yet
  }
  // How it is built counts too (this file, the packages): a bundle made another way, or of other packages, is made
  // again.
  const recipe = Math.max(...BUILD_FILES.map(mtimeOf));
  if (built > Math.max(recipe, ...SOURCES.map(newestSource))) return BUNDLE;
  const { build } = await import('esbuild');
  const tmp = `${BUNDLE}.${process.pid}.tmp`;
  mkdirSync(dirname(BUNDLE), { recursive: true });
  const result = await build({
    entryPoints: [WORKER_ENTRY],
    outfile: BUNDLE,
    write: false,
    bundle: true,
    mainFields: ['module', 'main'],
    platform: 'node',
    format: 'esm',
    target: NODE_TARGET,
    sourcemap: 'linked',
    logLevel: 'error',
    // CommonJS packages in the bundle call require() (the image's banner, local/esbuild-commonjs.mjs).
    banner: { js: REQUIRE_BANNER },
    // `node:http` without its ES module facade, as the image takes it (config/node-http.cjs).
    alias: Object.fromEntries(Object.entries(NODE_HTTP_ALIAS).map(([k, v]) => [k, join(ROOT, v)])),
  });
  // The map first, then the bundle (renamed into place): a bundle never names a map that is not there yet.
  const isMap = (f: { path: string }) => Number(f.path.endsWith('.map'));
  for (const f of [...result.outputFiles].sort((a, b) => isMap(b) - isMap(a))) {
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
  return BUNDLE;
}

function mtimeOf(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Users' processors (`ROWFLEET_PROCESSORS_DIR`, else processors/) built one per file for the workers, in a folder of
 * the cache named after the source folder (runtimes of different folders never share one). A file that does not
 * build gets its error file instead: the workers of its jobs fail them with PROCESSOR_BROKEN, others run.
 */
export async function workerProcessors(): Promise<string> {
  const src = resolve(usersDir());
  const out = join(
    dirname(BUNDLE),
    'processors',
    createHash('sha256').update(src).digest('hex').slice(0, 16),
  );
  await buildProcessors(src, out, { sourcesChangedAt: Math.max(...SOURCES.map(newestSource)) });
  return out;
}

/**
 * Builds the worker's bundle and the users' processors when a source changed since they were built (~1 s of esbuild),
 * as `cdk deploy` builds the image before any job runs: the benchmarks call it before they time a job, so the first
 * job after a change is not measured with a build between its split and its workers' start.
 */
export async function prepareWorkers(): Promise<void> {
  await workerBundle();
  await workerProcessors();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is still one of our workers: alive, and running the worker bundle. A pid file left by a crashed
 * runtime may name a pid the system gave to another process since; that one is never signalled.
 */
function isWorker(pid: number): boolean {
  return alive(pid) && commandLine(pid).includes(BUNDLE);
}

/** What a task's pid file holds: the job's site and the runtime instance that started it. */
interface TaskFile {
  readonly site: string;
  readonly instance?: string;
}

/**
 * Runs each row worker as a separate OS process (`node …/fargate-worker.mjs`, the bundled entry point), the local
 * stand-in for a Fargate task: same entry point, same environment contract, killable like a task.
 * Running workers are recorded as pid files under `<stateDir>/tasks/<token>/`, so any process of the
 * local runtime (the upload function starts them, the finalize function stops them) sees the same tasks.
 */
export class LocalTaskLauncher implements TaskLauncher {
  private readonly tasksDir: string;
  private readonly logDir: string;

  constructor(
    stateDir: string,
    /** The runtime instance that starts workers (kept in their pid files). */
    private readonly instance?: string,
  ) {
    this.tasksDir = join(stateDir, 'tasks');
    this.logDir = join(stateDir, 'logs');
  }

  private taskFile(token: string, pid: number): TaskFile {
    const text = readFileSync(join(this.tasksDir, token, String(pid)), 'utf8');
    return text.startsWith('{') ? (JSON.parse(text) as TaskFile) : { site: text };
  }

  async launch(req: LaunchRequest): Promise<string[]> {
    const dir = join(this.tasksDir, req.token);
    mkdirSync(dir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    const ids: string[] = [];
    const entry = await workerBundle();
    const processors = await workerProcessors();
    for (let i = 0; i < req.count; i++) {
      const out = openSync(join(this.logDir, `worker-${req.site}-${req.token}.log`), 'a');
      const child = spawn(process.execPath, [entry], {
        env: {
          ...process.env,
          POWERTOOLS_LOG_LEVEL: 'INFO',
          // V8's compiled code of the bundle and its packages, kept between worker starts.
          ...compileCacheEnv(),
          [ENV.processorsBuilt]: processors,
          ...workerEnv(req),
        },
        stdio: ['ignore', out, out],
      });
      closeSync(out);
      const pid = child.pid!;
      const task: TaskFile = { site: req.site, ...(this.instance ? { instance: this.instance } : {}) };
      writeFileSync(join(dir, String(pid)), JSON.stringify(task));
      child.once('exit', () => rmSync(join(dir, String(pid)), { force: true }));
      ids.push(`local-${pid}`);
    }
    return ids;
  }

  /** Process ids of the job's workers that are still running (pid files of anything else are removed). */
  running(token: string): number[] {
    const dir = join(this.tasksDir, token);
    let pids: number[];
    try {
      pids = readdirSync(dir).map(Number);
    } catch {
      return [];
    }
    return pids.filter((pid) => {
      if (isWorker(pid)) return true;
      rmSync(join(dir, String(pid)), { force: true });
      return false;
    });
  }

  /**
   * Stops the workers a previous runtime of this state directory started (it was killed: their endpoints are
   * gone); the reaper starts new ones for their jobs. Returns how many were stopped.
   */
  async stopOthers(): Promise<number> {
    let tokens: string[];
    try {
      tokens = readdirSync(this.tasksDir);
    } catch {
      return 0;
    }
    const pids = tokens.flatMap((t) =>
      this.running(t).filter((pid) => this.taskFile(t, pid).instance !== this.instance),
    );
    await this.terminate(pids);
    return pids.length;
  }

  async list(): Promise<TaskInfo[]> {
    let tokens: string[];
    try {
      tokens = readdirSync(this.tasksDir);
    } catch {
      return [];
    }
    return tokens.flatMap((token) =>
      this.running(token).map((pid) => ({
        id: `local-${pid}`,
        token,
        site: this.taskFile(token, pid).site,
      })),
    );
  }

  /**
   * Stops the job's workers and waits for them to exit (SIGKILL after 10 s, as ECS kills a task after its stop
   * timeout): once it returns, none of the job's worker processes is left.
   */
  async stop(_site: string, token: string): Promise<number> {
    const live = this.running(token);
    await this.terminate(live);
    return live.length;
  }

  /** Stops every worker of every job and waits (up to 10 s, then SIGKILL) for them to exit. */
  async stopAll(): Promise<void> {
    let tokens: string[];
    try {
      tokens = readdirSync(this.tasksDir);
    } catch {
      return;
    }
    await this.terminate(tokens.flatMap((t) => this.running(t)));
  }

  /** SIGKILL to every worker at once (a runtime stop that did not end in time). */
  killAll(): void {
    let tokens: string[];
    try {
      tokens = readdirSync(this.tasksDir);
    } catch {
      return;
    }
    for (const pid of tokens.flatMap((t) => this.running(t))) if (isWorker(pid)) process.kill(pid, 'SIGKILL');
  }

  /** SIGTERM (the chunks in hand are finished), then SIGKILL after 10 s; only ever processes that are our workers. */
  private async terminate(pids: number[]): Promise<void> {
    const signal = (pid: number, s: NodeJS.Signals) => {
      if (isWorker(pid)) process.kill(pid, s);
    };
    for (const pid of pids) signal(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (pids.some(isWorker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of pids) signal(pid, 'SIGKILL');
  }
}
