import { vi } from 'vitest';

/** What `f` gives once it gives something other than undefined, polled every `every` ms for at most `ms`. */
export function until<T>(
  what: string,
  ms: number,
  f: () => Promise<T | undefined> | T | undefined,
  every = 100,
): Promise<T> {
  return vi.waitFor(
    async () => {
      const v = await f();
      if (v === undefined) throw new Error(`timed out waiting for ${what}`);
      return v;
    },
    { timeout: ms, interval: every },
  );
}
