import type { Job } from '../../core/jobs/store.ts';
import type { ChunkMessage } from '../../core/messages/chunk.ts';

/** A RUNNING job of site sakai with a two-column header, as a worker reads it (unit tests of chunk work). */
export const RUNNING_JOB: Job = {
  site: 'sakai',
  token: '0f8fad5b-d9cb-469f-a165-70867728950e',
  state: 'RUNNING',
  processor: 'test',
  sourceKey: 'uploads/sakai/0f8fad5b-d9cb-469f-a165-70867728950e/source.csv',
  upload: 'direct',
  header: ['id', 'name'],
  chunksDone: 0,
  succeeded: 0,
  failed: 0,
  receivedAt: '2026-01-02T03:04:05.000Z',
};

/**
 * A chunk of {@link RUNNING_JOB}: `count` records of two fields (the number, then `second(n)`) from record `first`
 * (on line `first + 1`), and its message as the split sends it.
 */
export function runningChunk(
  count: number,
  first = 1,
  o: { readonly chunk?: number; readonly second?: (n: number) => string } = {},
): { msg: ChunkMessage; records: [number, number, string[]][] } {
  const second = o.second ?? ((n: number) => `name ${n}`);
  const records = Array.from(
    { length: count },
    (_, i) =>
      [first + i, first + i + 1, [String(first + i), second(first + i)]] as [number, number, string[]],
  );
  const msg: ChunkMessage = {
    v: 2,
    site: RUNNING_JOB.site,
    token: RUNNING_JOB.token,
    chunk: o.chunk ?? 0,
    key: RUNNING_JOB.sourceKey,
    start: 0,
    end: 1,
    n: first,
    line: first + 1,
    records: count,
  };
  return { msg, records };
}
