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
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workerEnv, type LaunchRequest, type TaskInfo, type TaskLauncher } from '../core/ops/launcher.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER_ENTRY = join(ROOT, 'fargate-worker', 'main.ts');
/** Inside node_modules, so the bundle's package imports resolve like the sources' do. */
const BUNDLE = join(ROOT, 'node_modules', '.cache', 'rowfleet', 'fargate-worker.mjs');
const SOURCES = ['config', 'core', 'fargate-worker', 'processors'].map((d) => join(ROOT, d));

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The worker as one ES module, like the container image runs it (esbuild, which tsx brings anyway):
 * a worker process then starts in ~0.2 s instead of compiling TypeScript on every start.
 * Rebuilt when a source is newer; written to a temporary name and renamed, so concurrent builds are safe.
 */
export async function workerBundle(): Promise<string> {
  let built = 0;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    // not built yet
  }
  if (built > Math.max(...SOURCES.map(newestSource))) return BUNDLE;
  const { build } = await import('esbuild');
  const tmp = `${BUNDLE}.${process.pid}.tmp`;
  mkdirSync(dirname(BUNDLE), { recursive: true });
  await build({
    entryPoints: [WORKER_ENTRY],
    outfile: tmp,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'error',
  });
  renameSync(tmp, BUNDLE);
  return BUNDLE;
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
 * Runs each row worker as a separate OS process (`node …/fargate-worker.mjs`, the bundled entry point), the local
 * stand-in for a Fargate task: same entry point, same environment contract, killable like a task.
 * Running workers are recorded as pid files under `<stateDir>/tasks/<token>/`, so any process of the
 * local runtime (the upload function starts them, the finalize function stops them) sees the same tasks.
 */
export class LocalTaskLauncher implements TaskLauncher {
  private readonly tasksDir: string;
  private readonly logDir: string;

  constructor(stateDir: string) {
    this.tasksDir = join(stateDir, 'tasks');
    this.logDir = join(stateDir, 'logs');
  }

  async launch(req: LaunchRequest): Promise<string[]> {
    const dir = join(this.tasksDir, req.token);
    mkdirSync(dir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    const ids: string[] = [];
    const entry = await workerBundle();
    for (let i = 0; i < req.count; i++) {
      const out = openSync(join(this.logDir, `worker-${req.site}-${req.token}.log`), 'a');
      const child = spawn(process.execPath, ['--enable-source-maps', entry], {
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'INFO', ...workerEnv(req) },
        stdio: ['ignore', out, out],
      });
      closeSync(out);
      const pid = child.pid!;
      writeFileSync(join(dir, String(pid)), req.site);
      child.once('exit', () => rmSync(join(dir, String(pid)), { force: true }));
      ids.push(`local-${pid}`);
    }
    return ids;
  }

  /** Process ids of the job's workers that are still running. */
  running(token: string): number[] {
    const dir = join(this.tasksDir, token);
    let pids: number[];
    try {
      pids = readdirSync(dir).map(Number);
    } catch {
      return [];
    }
    return pids.filter((pid) => {
      if (alive(pid)) return true;
      rmSync(join(dir, String(pid)), { force: true });
      return false;
    });
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
        site: readFileSync(join(this.tasksDir, token, String(pid)), 'utf8'),
      })),
    );
  }

  async stop(_site: string, token: string): Promise<number> {
    const live = this.running(token);
    for (const pid of live) process.kill(pid, 'SIGTERM');
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
    const pids = tokens.flatMap((t) => this.running(t));
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
  }
}
