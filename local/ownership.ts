/**
 * One local runtime per state directory. The runtime that owns a state directory holds its lock
 * (`<state>/runtime.lock`, proper-lockfile: a directory created atomically, its mtime refreshed while the owner
 * lives, stale 10 s after it stops being refreshed) and names itself in `<state>/runtime.json`: its pid and that
 * process's start time (so a pid the system gave to another process since is never taken for the owner), its
 * instance id, its API and control URLs, the emulators' endpoints and the environment that addresses them.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { writeFileAtomicSync } from '../core/shared/atomic-write.ts';

export interface RuntimeOwner {
  readonly pid: number;
  /** The owner process's start time as the system reports it (pid-reuse safe liveness). */
  readonly processStart: string;
  /** This runtime's id: finalize leases and worker pid files name it. */
  readonly instance: string;
  readonly stage: string;
  readonly stateDir: string;
  /** The external endpoint it runs against (LocalStack), if any. */
  readonly endpoint?: string;
  readonly apiUrl: string;
  /** Where commands attach (local/control.ts); `secret` authenticates them. */
  readonly controlUrl: string;
  readonly secret: string;
  readonly endpoints: Record<string, string>;
  /** The emulator host process (waited for when a killed owner is replaced). */
  readonly emulatorPid?: number;
  /** AWS_ENDPOINT_URL_* and the resource names the handlers read (what an attached command sets). */
  readonly env: Record<string, string>;
  readonly startedAt: string;
}

const OWNER_FILE = 'runtime.json';
const LOCK_FILE = 'runtime.lock';
/** The lock is stale this long after its owner stopped refreshing it (killed). */
const LOCK_STALE_MS = 10_000;

/** A process's command line ('' when it is gone): /proc on Linux, `ps` elsewhere (macOS). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    try {
      return execFileSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  }
}

/**
 * Creates the state directory readable by this user only (0700; an existing one is narrowed): what is inside —
 * the emulators' data, the API tokens, the credentials — is nobody else's to read.
 */
export function privateStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
}

export const ownerFile = (stateDir: string) => join(stateDir, OWNER_FILE);

/** When a process started, as the system says (/proc on Linux, `ps` elsewhere); '' when it is gone. */
export function processStart(pid: number): string {
  try {
    // Field 22 of /proc/<pid>/stat: start time in clock ticks since boot (after the command in parentheses).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    try {
      return execFileSync('ps', ['-p', String(pid), '-o', 'lstart='], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  }
}

/** Whether the process `pid` that started at `start` still runs (false for a pid reused by another process). */
export function sameProcess(pid: number, start: string): boolean {
  return start !== '' && processStart(pid) === start;
}

export function readOwner(stateDir: string): RuntimeOwner | undefined {
  try {
    return JSON.parse(readFileSync(ownerFile(stateDir), 'utf8')) as RuntimeOwner;
  } catch {
    return undefined;
  }
}

export function ownerAlive(o: RuntimeOwner): boolean {
  return sameProcess(o.pid, o.processStart);
}

/** Written atomically (a reader never sees half a file), readable by the user only (it holds the secret). */
export function writeOwner(o: RuntimeOwner): void {
  const file = ownerFile(o.stateDir);
  writeFileAtomicSync(file, JSON.stringify(o, null, 2), { mode: 0o600 });
}

/** Removes the owner file if it still names `instance`. */
export function removeOwner(stateDir: string, instance: string): void {
  if (readOwner(stateDir)?.instance === instance) rmSync(ownerFile(stateDir), { force: true });
}

export class StateDirBusyError extends Error {
  override readonly name = 'StateDirBusyError';
}

/**
 * Takes the state directory for this process, waiting up to `waitMs` for an owner that is stopping. An owner
 * that was killed is replaced at once (its recorded process is gone) once its emulator host has saved and exited;
 * its lock would otherwise go stale only after 10 s. `onLost` is called if the lock is ever taken from us.
 * Returns the release function.
 */
export async function acquireStateDir(
  stateDir: string,
  o: { readonly waitMs: number; readonly onLost: (err: Error) => void },
): Promise<() => Promise<void>> {
  const lockPath = join(stateDir, LOCK_FILE);
  const deadline = Date.now() + o.waitMs;
  for (;;) {
    try {
      return await lockfile.lock(stateDir, {
        lockfilePath: lockPath,
        stale: LOCK_STALE_MS,
        update: 2000,
        realpath: false,
        onCompromised: o.onLost,
      });
    } catch (err) {
      if ((err as { code?: string }).code !== 'ELOCKED') throw err;
      const owner = readOwner(stateDir);
      if (owner && !ownerAlive(owner)) {
        await waitForExit(owner.emulatorPid, 'emulator-host', 15_000);
        // The killed owner's lock: released for it (its mtime would be stale within LOCK_STALE_MS anyway).
        if (!ownerAlive(owner) && readOwner(stateDir)?.instance === owner.instance) {
          rmSync(lockPath, { recursive: true, force: true });
          rmSync(ownerFile(stateDir), { force: true });
          continue;
        }
      }
      if (owner && ownerAlive(owner) && Date.now() > deadline) {
        throw new StateDirBusyError(
          `another Rowfleet runtime (pid ${owner.pid}) owns ${stateDir}; attach to it instead of starting one`,
        );
      }
      if (Date.now() > deadline) throw new StateDirBusyError(`${stateDir} is locked (${lockPath})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Waits for `pid` (if it is still the process named `marker`) to exit; SIGKILL after `ms`. */
async function waitForExit(pid: number | undefined, marker: string, ms: number): Promise<void> {
  if (!pid) return;
  const ours = () => commandLine(pid).includes(marker);
  const deadline = Date.now() + ms;
  while (ours() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (ours()) process.kill(pid, 'SIGKILL');
}

/** Whether a state directory holds a lock file (an owner, live or stale). */
export function isLocked(stateDir: string): boolean {
  return existsSync(join(stateDir, LOCK_FILE));
}
