/** Rate and ETA of a job from what polling saw. Pure functions (unit-tested in Node). */

export interface ProgressSample {
  /** Milliseconds (a clock of the caller's choice). */
  readonly at: number;
  readonly done: number;
}

/** How far back the rate looks: long enough to smooth chunk-sized steps, short enough to follow changes. */
export const RATE_WINDOW_MS = 15_000;

/** Adds a sample and drops those older than the window (keeping one before it, so a window is never empty). */
export function addSample(samples: readonly ProgressSample[], s: ProgressSample): ProgressSample[] {
  const kept = samples.filter((x) => x.at <= s.at && x.done <= s.done);
  const next = [...kept, s];
  let first = 0;
  while (first < next.length - 2 && next[first + 1]!.at <= s.at - RATE_WINDOW_MS) first++;
  return next.slice(first);
}

export interface Estimate {
  /** Records per second; undefined until two samples at least 0.5 s apart were seen. */
  readonly rate?: number;
  /** Seconds until done at that rate; undefined without a rate or a total. */
  readonly etaSeconds?: number;
}

export function estimate(samples: readonly ProgressSample[], total: number | undefined): Estimate {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last || last.at - first.at < 500) return {};
  const rate = ((last.done - first.done) * 1000) / (last.at - first.at);
  if (!(rate > 0)) return { rate: 0 };
  if (total === undefined) return { rate };
  return { rate, etaSeconds: Math.max(0, (total - last.done) / rate) };
}

/** A finished job's average rate: its records over the time from receipt to finish. */
export function averageRate(records: number, receivedAt: string, finishedAt: string | undefined) {
  if (!finishedAt || records <= 0) return undefined;
  const seconds = (Date.parse(finishedAt) - Date.parse(receivedAt)) / 1000;
  return seconds > 0 ? records / seconds : undefined;
}
