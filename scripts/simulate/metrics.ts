/**
 * What a simulated day is judged by, measured over the time demand exceeds the budget: places held and workers
 * busy, small jobs' waits, and fairness between sites (Jain's index of each site's worker-seconds over its max-min
 * fair share, per window).
 */
import { LARGE, SMALL, usableOf, WINDOW_S, type PolicyName, type SimJob } from './model.ts';

export interface Result {
  readonly policy: PolicyName;
  /** Places held (tasks starting or running) ÷ budget, over the time demand exceeded the budget. */
  readonly utilisation: number;
  /** Workers processing chunks ÷ budget, same time. */
  readonly busy: number;
  readonly contendedHours: number;
  readonly smallJobs: number;
  readonly smallWaitP50: number;
  readonly smallWaitP99: number;
  readonly smallRunningP99: number;
  readonly jain: number;
  readonly peakRequested: number;
  readonly launchFailures: number;
  /** Workers told to leave because their job's share shrank / because their job had fewer chunks left. */
  readonly shedForShare: number;
  readonly shedForChunks: number;
  readonly lastJobEnd: number;
}

/** Max-min fair shares of a budget among demands (continuous water-filling, equal weights). */
export function waterFill(demand: Map<string, number>, budget: number): Map<string, number> {
  const out = new Map<string, number>();
  const sorted = [...demand].sort((a, b) => a[1] - b[1]);
  let left = budget;
  for (let i = 0; i < sorted.length; i++) {
    const [site, d] = sorted[i]!;
    const share = left / (sorted.length - i);
    const give = Math.min(d, share);
    out.set(site, give);
    left -= give;
  }
  return out;
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** The day's figures, integrated between events. */
export class Metrics {
  private last = 0;
  private contended = 0;
  private heldInt = 0;
  private busyInt = 0;
  private readonly windows = new Map<
    number,
    { t: number; held: Map<string, number>; fair: Map<string, number> }
  >();

  constructor(private readonly budget: number) {}

  /** Integrates from the last event up to `t`, with what held between them. */
  advance(
    t: number,
    active: ReadonlySet<SimJob>,
    alive: number,
    busy: number,
    aliveBySite: ReadonlyMap<string, number>,
  ): void {
    const B = this.budget;
    const dt = t - this.last;
    if (dt <= 0) return;
    const siteDemand = new Map<string, number>();
    let total = 0;
    for (const job of active) {
      const d = usableOf(job);
      total += d;
      if (d > 0) siteDemand.set(job.u.site, (siteDemand.get(job.u.site) ?? 0) + d);
    }
    if (total > B) {
      this.contended += dt;
      this.heldInt += alive * dt;
      this.busyInt += busy * dt;
      const w = Math.floor(this.last / WINDOW_S);
      const win = this.windows.get(w) ?? { t: 0, held: new Map(), fair: new Map() };
      this.windows.set(w, win);
      win.t += dt;
      for (const [site, f] of waterFill(siteDemand, B)) {
        win.fair.set(site, (win.fair.get(site) ?? 0) + f * dt);
        win.held.set(site, (win.held.get(site) ?? 0) + (aliveBySite.get(site) ?? 0) * dt);
      }
    }
    this.last = t;
  }

  /** The day's result, once it is over. */
  result(
    policy: PolicyName,
    jobs: readonly SimJob[],
    counts: Pick<Result, 'peakRequested' | 'launchFailures' | 'shedForShare' | 'shedForChunks'>,
  ): Result {
    const B = this.budget;
    const { contended, heldInt, busyInt } = this;
    const small = jobs.filter((j) => j.u.records < SMALL && j.duringLarge);
    const waits = small.map((j) => j.firstWorkerAt! - j.ready);
    const running = small.map((j) => j.firstRunningAt! - j.ready);
    let jainWeighted = 0;
    let jainTime = 0;
    for (const win of this.windows.values()) {
      const xs = [...win.fair].filter(([, f]) => f > 0).map(([s, f]) => (win.held.get(s) ?? 0) / f);
      if (xs.length === 0) continue;
      const sum = xs.reduce((a, b) => a + b, 0);
      const sq = xs.reduce((a, b) => a + b * b, 0);
      const j = sq === 0 ? 0 : (sum * sum) / (xs.length * sq);
      jainWeighted += j * win.t;
      jainTime += win.t;
    }
    return {
      policy,
      utilisation: contended > 0 ? heldInt / (B * contended) : NaN,
      busy: contended > 0 ? busyInt / (B * contended) : NaN,
      contendedHours: contended / 3600,
      smallJobs: small.length,
      smallWaitP50: quantile(waits, 0.5),
      smallWaitP99: quantile(waits, 0.99),
      smallRunningP99: quantile(running, 0.99),
      jain: jainTime > 0 ? jainWeighted / jainTime : NaN,
      peakRequested: counts.peakRequested,
      launchFailures: counts.launchFailures,
      shedForShare: counts.shedForShare,
      shedForChunks: counts.shedForChunks,
      lastJobEnd: Math.max(...jobs.map((j) => j.finished ?? 0)),
    };
  }
}

/** Whether a large job has workers (a small job whose split ends now is one whose wait is measured). */
export const largeJobRunning = (active: ReadonlySet<SimJob>) =>
  [...active].some((j) => j.u.records >= LARGE && j.firstWorkerAt !== undefined);
