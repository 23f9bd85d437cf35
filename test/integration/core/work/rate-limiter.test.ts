/**
 * The stage-wide rate limiter (issue 8) across processes: separate Node processes take from one limiter in
 * DynamoDB (dynalite here) at the same time; together they stay within the rate.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../../core/work/rate-limiter.ts';
import { useTestAws } from '../../../helpers/aws.ts';

const aws = useTestAws();
const CHILD = fileURLToPath(new URL('../../../helpers/limiter-child.ts', import.meta.url));

/** The most takes in any one-second span (sliding, to the millisecond). */
function maxPerSecond(times: readonly number[]): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

interface ChildResult {
  times: number[];
  stats: { writes: number; granted: number };
}

function startChild(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    env: process.env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const ready = new Promise<void>((resolve) =>
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.startsWith('ready\n')) resolve();
    }),
  );
  const done = new Promise<ChildResult>((resolve, reject) =>
    child.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out.split('\n')[1]!) as ChildResult)
        : reject(new Error(`child ${code}`)),
    ),
  );
  return { child, ready, done };
}

describe('Class: RateLimiter', () => {
  it('holds three processes taking at once to the shared rate (sliding one-second windows)', async () => {
    // Prepare: 3 processes × 80 takes at 60/s: at least 4 s together
    const rate = 60;
    const children = [0, 1, 2].map(() => startChild([aws.table, 'shared-test', String(rate), '80']));
    await Promise.all(children.map((c) => c.ready));

    // Act
    const t0 = Date.now();
    for (const c of children) c.child.stdin.write('go\n');
    const results = await Promise.all(children.map((c) => c.done));

    // Assess
    const times = results.flatMap((r) => r.times);
    const seconds = (Math.max(...times) - t0) / 1000;
    expect(times).toHaveLength(240);
    expect(results.every((r) => r.times.length === 80)).toBe(true);
    expect(maxPerSecond(times)).toBeLessThanOrEqual(Math.ceil(rate * 1.1));
    expect(seconds).toBeGreaterThan(240 / rate - 1);
    // At most one write per process and window (3 processes, windows of 50 ms)
    const writes = results.reduce((s, r) => s + r.stats.writes, 0);
    expect(writes).toBeLessThanOrEqual(3 * Math.ceil((seconds * 1000) / 50) + 3);
  }, 60_000);

  it("asks for all of a process's waiters at once: one write per window, not per take", async () => {
    // Prepare: 90 takes at 60/s in one process: windows of 50 ms hand out 3 each
    const limiter = new RateLimiter(aws.table, 'batch-test', 60);

    // Act
    await Promise.all(Array.from({ length: 90 }, () => limiter.take()));

    // Assess
    expect(limiter.stats.granted).toBe(90);
    expect(limiter.stats.writes).toBeLessThanOrEqual(90 / 3 + 2);
  });

  it('gives up a waiting take when its signal aborts, without holding the others', async () => {
    // Prepare: 2 per second; the first take passes, the second waits
    const limiter = new RateLimiter(aws.table, 'abort-test', 2);
    await limiter.take();
    const stop = new AbortController();

    // Act
    const waiting = limiter.take(stop.signal).then(
      () => 'went',
      (e: unknown) => String(e),
    );
    stop.abort('stopped');
    const next = limiter.take().then(() => 'went');

    // Assess
    expect(await waiting).toBe('stopped');
    expect(await next).toBe('went');
  });
});
