/**
 * The bench's core-seconds per process kind, from the OS (Linux /proc; elsewhere `undefined`): the split (the upload
 * function's process), the workers (the fargate-worker bundle's processes), the finalize, the emulators, and the
 * runtime itself (the bench's own process — the local API, the event sources and the bench's client — and the status
 * function). The machine-wide figure of /proc/stat counts every other engineer's processes too; this one counts only
 * the runtime's process tree, so the pipeline's own cost can be set against the single-process floor's.
 *
 * Workers come and go during a job: the tree is sampled every `sampleMs`, and a worker that exits between two
 * samples is counted exactly through its parent's cutime/cstime (the CPU of reaped children), so the total is the
 * OS's figure, not an estimate.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export type CpuKind = 'split' | 'workers' | 'finalize' | 'emulators' | 'runtime' | 'other';
export type CoreSeconds = Record<CpuKind, number>;

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly self: number;
  /** cutime + cstime (reaped children), in clock ticks. */
  readonly children: number;
}

const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    return {
      pid,
      ppid: Number(f[1]),
      self: Number(f[11]) + Number(f[12]),
      children: Number(f[13]) + Number(f[14]),
    };
  } catch {
    return undefined;
  }
}

/** Which kind of the runtime's processes `pid` is (its command line, and for a function host its environment). */
function kindOf(pid: number, root: number): CpuKind {
  if (pid === root) return 'runtime';
  let cmd: string;
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return 'other';
  }
  if (cmd.includes('emulator-host')) return 'emulators';
  if (cmd.includes('fargate-worker')) return 'workers';
  if (cmd.includes('lambda-host') || cmd.includes('bundle-host')) {
    let fn = '';
    try {
      fn = /(?:^|\0)ROWFLEET_FUNCTION=([^\0]*)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1] ?? '';
    } catch {
      // gone meanwhile
    }
    if (fn === 'upload') return 'split';
    if (fn === 'finalize') return 'finalize';
    return 'runtime';
  }
  return 'other';
}

/** The processes under `root` (itself included). */
function tree(root: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const s = readStat(pid);
    if (s) all.push(s);
  }
  const byParent = new Map<number, ProcStat[]>();
  for (const s of all) byParent.set(s.ppid, [...(byParent.get(s.ppid) ?? []), s]);
  const out: ProcStat[] = [];
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) return out;
  const stack = [rootStat];
  while (stack.length) {
    const s = stack.pop()!;
    out.push(s);
    stack.push(...(byParent.get(s.pid) ?? []));
  }
  return out;
}

interface Seen {
  readonly kind: CpuKind;
  readonly first: ProcStat;
  last: ProcStat;
  /** Present in the first snapshot (its CPU before the start is not counted). */
  readonly atStart: boolean;
}

/**
 * Starts counting the core-seconds of the process tree under `root` (default: this process); `stop()` returns them
 * per kind. Undefined where /proc is not there.
 */
export function startCpuCount(root = process.pid, sampleMs = 250): { stop(): CoreSeconds } | undefined {
  if (!readStat(root)) return undefined;
  const seen = new Map<number, Seen>();
  const sample = (atStart: boolean) => {
    for (const s of tree(root)) {
      const known = seen.get(s.pid);
      if (known) known.last = s;
      else seen.set(s.pid, { kind: kindOf(s.pid, root), first: s, last: s, atStart });
    }
  };
  sample(true);
  const timer = setInterval(() => sample(false), sampleMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const end = new Map(tree(root).map((s) => [s.pid, s]));
      const out: CoreSeconds = { split: 0, workers: 0, finalize: 0, emulators: 0, runtime: 0, other: 0 };
      let reaped = 0;
      let goneSeen = 0;
      const gone: Seen[] = [];
      for (const [pid, p] of seen) {
        const now = end.get(pid);
        const base = p.atStart ? p.first.self : 0;
        if (now) {
          out[p.kind] += now.self - base;
          // Children reaped by this process meanwhile (workers, mostly): counted below, by the kinds of those seen.
          reaped += now.children - (p.atStart ? p.first.children : 0);
        } else {
          gone.push(p);
          goneSeen += p.last.self - base;
        }
      }
      // A process gone since its last sample ran a little more than sampled: its parent's cutime has the exact
      // figure. The rest (reaped − sampled) goes to the gone processes' kinds in proportion to what was sampled.
      const rest = Math.max(0, reaped - goneSeen);
      for (const p of gone) {
        const sampled = p.last.self - (p.atStart ? p.first.self : 0);
        out[p.kind] += sampled + (goneSeen > 0 ? (rest * sampled) / goneSeen : 0);
      }
      if (goneSeen === 0) out.other += rest;
      for (const k of Object.keys(out) as CpuKind[]) out[k] = +(out[k] / TICKS).toFixed(2);
      return out;
    },
  };
}

/** The pipeline's own core-seconds: split + workers + finalize (the emulators and the runtime's API excluded). */
export function ownCoreSeconds(c: CoreSeconds): number {
  return c.split + c.workers + c.finalize;
}

/** This process's own core-seconds since its start (for the floor, which runs in it). */
export function processCoreSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
