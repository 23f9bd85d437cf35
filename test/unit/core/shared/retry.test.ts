import { describe, expect, it } from 'vitest';
import { retry } from '../../../../core/shared/retry.ts';
import { caught } from '../../../helpers/streams.ts';

/** A step that fails with the given errors first, then answers its attempt number. */
function scripted(failures: Error[]) {
  const attempts: number[] = [];
  const fn = async (attempt: number) => {
    attempts.push(attempt);
    const f = failures.shift();
    if (f) throw f;
    return attempt;
  };
  return { fn, attempts };
}

describe('Function: retry', () => {
  it('tries again after each failure, waiting the delay of the attempt that failed, until one succeeds', async () => {
    // Prepare
    const { fn, attempts } = scripted([new Error('a'), new Error('b')]);
    const sleeps: number[] = [];
    const seen: [string, number, number][] = [];

    // Act
    const r = await retry(fn, {
      attempts: 5,
      delayMs: (a) => a * 10,
      onRetry: (err, a, ms) => void seen.push([(err as Error).message, a, ms]),
      sleep: async (ms) => void sleeps.push(ms),
    });

    // Assess
    expect(r).toBe(3);
    expect(attempts).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([10, 20]);
    expect(seen).toEqual([
      ['a', 1, 10],
      ['b', 2, 20],
    ]);
  });

  it('throws the last failure once the attempts are spent, without waiting after it', async () => {
    // Prepare
    const { fn, attempts } = scripted([new Error('1'), new Error('2'), new Error('3'), new Error('4')]);
    const sleeps: number[] = [];

    // Act
    const err = await caught(() =>
      retry(fn, { attempts: 3, delayMs: () => 1, sleep: async (ms) => void sleeps.push(ms) }),
    );

    // Assess
    expect(err.message).toBe('3');
    expect(attempts).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([1, 1]);
  });

  it('throws at once a failure its filter does not retry', async () => {
    // Prepare
    const { fn, attempts } = scripted([new Error('retry me'), new TypeError('final')]);
    const sleeps: number[] = [];

    // Act
    const err = await caught(() =>
      retry(fn, {
        attempts: 5,
        delayMs: () => 1,
        retryIf: (e) => !(e instanceof TypeError),
        sleep: async (ms) => void sleeps.push(ms),
      }),
    );

    // Assess
    expect(err).toBeInstanceOf(TypeError);
    expect(attempts).toEqual([1, 2]);
    expect(sleeps).toEqual([1]);
  });
});
