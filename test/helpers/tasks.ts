import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Pids of the local runtime's workers, from the local launcher's task files (`<state>/tasks/<token>/<pid>`). */
export function workerPids(stateDir: string): number[] {
  const tasks = join(stateDir, 'tasks');
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  return list(tasks).flatMap((token) => list(join(tasks, token)).map(Number));
}

/** How many of those workers are alive now. */
export function liveWorkers(stateDir: string): number {
  return workerPids(stateDir).filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }).length;
}

/** The workers' pids once `n` have started (polled every 100 ms for at most `ms`), or as many as there are then. */
export async function startedWorkers(stateDir: string, n: number, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let pids = workerPids(stateDir);
  while (pids.length < n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    pids = workerPids(stateDir);
  }
  return pids;
}
