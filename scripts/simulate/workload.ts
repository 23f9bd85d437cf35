/** The simulated day's uploads: sizes from a bounded Pareto (heavy tail), sites by a Zipf-like popularity, a working day. */

export interface Upload {
  readonly site: string;
  readonly token: string;
  readonly records: number;
  /** Seconds after 00:00. */
  readonly arrival: number;
}

/** The bounded Pareto of job sizes (records); its `alpha` is the `--alpha` option. */
export const SIZE = { min: 10, max: 5_000_000 } as const;

/** mulberry32: a small seeded generator, so a seed replays the same day. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The day's uploads in arrival order: the same for a seed, whatever the policy. */
export function workload(p: {
  readonly seed: number;
  readonly jobs: number;
  readonly sites: number;
  readonly alpha: number;
}): Upload[] {
  const r = rng(p.seed);
  const popularity = Array.from({ length: p.sites }, (_, i) => 1 / (i + 1) ** 0.7);
  const total = popularity.reduce((a, b) => a + b, 0);
  const pickSite = () => {
    let u = r() * total;
    for (let i = 0; i < popularity.length; i++) {
      u -= popularity[i]!;
      if (u <= 0) return `site-${String(i + 1).padStart(2, '0')}`;
    }
    return `site-${String(p.sites).padStart(2, '0')}`;
  };
  const size = () => {
    const { min, max } = SIZE;
    const alpha = p.alpha;
    const u = r();
    const x = min / (1 - u * (1 - (min / max) ** alpha)) ** (1 / alpha);
    return Math.max(1, Math.round(x));
  };
  const arrival = () => {
    const u = r();
    // 40 % in a morning rush (08:45-09:45), 45 % over the working day (09:45-18:00), 15 % any time.
    if (u < 0.4) return 8.75 * 3600 + r() * 3600;
    if (u < 0.85) return 9.75 * 3600 + r() * 8.25 * 3600;
    return r() * 24 * 3600;
  };
  const out: Upload[] = [];
  for (let i = 0; i < p.jobs; i++) {
    out.push({
      site: pickSite(),
      token: `job-${String(i).padStart(5, '0')}`,
      records: size(),
      arrival: arrival(),
    });
  }
  return out.sort((a, b) => a.arrival - b.arrival || a.token.localeCompare(b.token));
}
