/** Yields `bytes` in pieces of `size` bytes, as a file or network stream would. */
export async function* chunksOf(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** Yields the given strings, one by one. */
export async function* strings(...parts: string[]): AsyncGenerator<string> {
  for (const p of parts) yield p;
}

/** Collects an async iterable into an array. */
export async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

/** Awaits `fn`, returning what it threw (fails when it did not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & { code?: string; line?: number }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string; line?: number };
  }
  throw new Error('expected a rejection, but the call succeeded');
}
