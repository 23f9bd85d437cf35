/**
 * The bench's figures from the pipeline's own records (issue 22): the end-to-end job's phases from its spans (the
 * local span store), and the core-seconds each kind of process used, from the OS (/proc/<pid>/stat utime + stime,
 * Linux): the split's host (the upload function), the workers, the finalize, the status function, the emulators, and
 * the runtime itself (API, event sources, reaper: this process). Sampled every 200 ms, so a worker that exits
 * between two samples loses at most its last 200 ms; the figures of this process come from process.cpuUsage().
 * Tracing's own cost is measured by running the bench with ROWFLEET_TRACING=off and without, alternated.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSpans } from '../core/shared/trace-file.ts';
import { buildTimeline } from '../core/shared/timeline.ts';

export type ProcessKind = 'upload' | 'status' | 'finalize' | 'workers' | 'emulators' | 'runtime' | 'other';

const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** ppid and utime + stime (ticks) of a process, or undefined when it is gone (or not Linux). */
function stat(pid: number): { ppid: number; ticks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state, ppid, … utime (14), stime (15).
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

function kindOf(pid: number): ProcessKind {
  let env: string[];
  try {
    env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch {
    return 'other';
  }
  const has = (k: string) => env.find((e) => e.startsWith(`${k}=`))?.slice(k.length + 1);
  // Workers inherit the environment of whoever launched them (the upload function): JOB_TOKEN first.
  if (has('JOB_TOKEN')) return 'workers';
  if (has('ROWFLEET_EMULATOR_OPTIONS')) return 'emulators';
  const fn = has('ROWFLEET_FUNCTION');
  return fn === 'upload' || fn === 'status' || fn === 'finalize' ? fn : 'other';
}

/** Samples the core-seconds of this process's descendants by kind until `stop()`. */
export function startProcessCpu(intervalMs = 200): { stop(): Partial<Record<ProcessKind, number>> } {
  const self = process.pid;
  const own = process.cpuUsage();
  const seen = new Map<number, { kind: ProcessKind; first: number; last: number }>();
  const foreign = new Set<number>();
  const sample = () => {
    let pids: number[];
    try {
      pids = readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n))
        .map(Number);
    } catch {
      return;
    }
    const parents = new Map<number, number>();
    const ticks = new Map<number, number>();
    for (const pid of pids) {
      if (pid === self || foreign.has(pid)) continue;
      const s = stat(pid);
      if (!s) continue;
      parents.set(pid, s.ppid);
      ticks.set(pid, s.ticks);
    }
    const ours = (pid: number): boolean => {
      for (let p = parents.get(pid), hops = 0; p !== undefined && hops < 10; p = parents.get(p), hops++)
        if (p === self) return true;
      return false;
    };
    for (const [pid, t] of ticks) {
      const known = seen.get(pid);
      if (known) known.last = t;
      else if (ours(pid)) seen.set(pid, { kind: kindOf(pid), first: 0, last: t });
      else foreign.add(pid);
    }
  };
  sample();
  // Processes already running when sampling starts count from now, not from their start.
  for (const s of seen.values()) s.first = s.last;
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      sample();
      clearInterval(timer);
      const out: Partial<Record<ProcessKind, number>> = {};
      for (const s of seen.values()) out[s.kind] = (out[s.kind] ?? 0) + (s.last - s.first) / TICKS;
      const u = process.cpuUsage(own);
      out.runtime = (u.user + u.system) / 1e6;
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, +v.toFixed(2)]));
    },
  };
}

/**
 * The end-to-end job's phases in seconds, from its spans: upload and event (the run's start to the split's), split,
 * queue wait, workers (grant to last chunk), finalize, download (the job's end to the run's). Undefined when no span
 * was recorded (ROWFLEET_TRACING=off): the bench then falls back to the job's timestamps.
 */
export async function spanPhases(
  stateDir: string,
  job: { site: string; token: string; state: string; receivedAt: string; finishedAt?: string },
  runStart: number,
  runEnd: number,
): Promise<Record<string, number> | undefined> {
  const spans = await readSpans(join(stateDir, 'traces'), job.site, job.token);
  if (spans.length === 0) return undefined;
  const tl = buildTimeline(job, spans);
  const p = tl.phases;
  if (!p.split?.end || !p.finalize?.end) return undefined;
  const end = tl.endsAt ? Date.parse(tl.endsAt) : Date.parse(p.finalize.end);
  const s = (x: number) => +(x / 1000).toFixed(2);
  return {
    uploadAndEvent: s(Date.parse(p.split.start) - runStart),
    split: p.split.seconds ?? 0,
    queueWait: p.queueWait?.seconds ?? 0,
    workers: p.workers?.seconds ?? 0,
    finalize: p.finalize.seconds ?? 0,
    zip: tl.zip?.seconds ?? 0,
    download: s(runEnd - end),
  };
}

/** The pipeline's own core-seconds (split + workers + finalize, emulators excluded) and their ratio to the floor's. */
export function ownCost(byKind: Partial<Record<ProcessKind, number>>, floorCoreSeconds: number) {
  const own = (byKind.upload ?? 0) + (byKind.workers ?? 0) + (byKind.finalize ?? 0);
  return {
    ownCoreSeconds: +own.toFixed(2),
    floorCoreSeconds: +floorCoreSeconds.toFixed(2),
    ownCoreSecondsVsFloor: floorCoreSeconds > 0 ? +(own / floorCoreSeconds).toFixed(2) : undefined,
  };
}
