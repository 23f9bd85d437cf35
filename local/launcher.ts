import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workerEnv, type LaunchRequest, type TaskLauncher } from '../core/launcher.ts';

const WORKER_ENTRY = fileURLToPath(new URL('../fargate-worker/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

/**
 * Runs each row worker as a separate OS process (`node --import tsx …/fargate-worker/main.ts`), the local
 * stand-in for a Fargate task: same entry point, same environment contract, killable like a task.
 */
export class LocalTaskLauncher implements TaskLauncher {
  private readonly tasks = new Map<string, ChildProcess[]>();

  constructor(
    private readonly env: () => Record<string, string>,
    private readonly logDir?: string,
  ) {}

  async launch(req: LaunchRequest): Promise<string[]> {
    const ids: string[] = [];
    const list = this.tasks.get(req.token) ?? [];
    for (let i = 0; i < req.count; i++) {
      let out: number | 'ignore' = 'ignore';
      if (this.logDir) {
        mkdirSync(this.logDir, { recursive: true });
        out = openSync(join(this.logDir, `worker-${req.token}-${list.length}.log`), 'a');
      }
      const child = spawn(process.execPath, ['--import', TSX, WORKER_ENTRY], {
        env: { ...process.env, ...this.env(), ...workerEnv(req) },
        stdio: ['ignore', out, out],
      });
      if (typeof out === 'number') closeSync(out);
      list.push(child);
      ids.push(`local-${child.pid}`);
    }
    this.tasks.set(req.token, list);
    return ids;
  }

  /** The worker processes of a job that are still running. */
  running(token: string): ChildProcess[] {
    return (this.tasks.get(token) ?? []).filter((c) => c.exitCode === null && c.signalCode === null);
  }

  async stop(_site: string, token: string): Promise<number> {
    const live = this.running(token);
    for (const c of live) c.kill('SIGTERM');
    return live.length;
  }

  /** Stops every worker this launcher started and waits for them to exit. */
  async stopAll(): Promise<void> {
    const all = [...this.tasks.values()].flat().filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((r) => {
            c.once('exit', () => r());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  }
}
