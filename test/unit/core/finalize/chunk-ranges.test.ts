import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { chunkRanges } from '../../../../core/finalize/sheet-from-parts.ts';
import { RUNNING_JOB, runningChunk } from '../../../helpers/running-job.ts';

/** A source of `chunks` × 3 records `n,name n` (CRLF), and each chunk's message naming its bytes. */
function source(chunks: number) {
  const lines = Array.from({ length: chunks * 3 }, (_, i) => `${i + 1},name ${i + 1}\r\n`);
  const bytes = Buffer.from(lines.join(''), 'utf8');
  let at = 0;
  const msgs = Array.from({ length: chunks }, (_, c) => {
    const start = at;
    for (let k = 0; k < 3; k++) at += Buffer.byteLength(lines[c * 3 + k]!);
    const { msg } = runningChunk(3, c * 3 + 1, { chunk: c });
    return { ...msg, start, end: at };
  });
  return { bytes, msgs };
}

describe('Function: chunkRanges', () => {
  it('reads a few ranges at once and gives each chunk its records, in the chunks’ order', async () => {
    // Prepare: range reads that count how many are in flight
    const { bytes, msgs } = source(12);
    let inFlight = 0;
    let peak = 0;
    // Later chunks answer sooner: chunk c's read takes (12 - c) × 2 ms
    const chunkAt = new Map(msgs.map((m, c) => [m.start, c]));
    const objects = {
      bytes: async (_key: string, range?: { start?: number; end?: number }) => {
        peak = Math.max(peak, ++inFlight);
        await sleep((12 - chunkAt.get(range?.start ?? 0)!) * 2);
        inFlight--;
        return bytes.subarray(range?.start ?? 0, (range?.end ?? bytes.length - 1) + 1);
      },
    };
    const deps = { objects, limits: { maxRecordBytes: 1 << 20 } } as unknown as Parameters<
      typeof chunkRanges
    >[0];

    // Act
    const got: number[][] = [];
    for await (const events of chunkRanges(deps, RUNNING_JOB, msgs))
      got.push(events.map((e) => (e.kind === 'record' ? e.n : NaN)));

    // Assess
    expect(got).toEqual(msgs.map((m) => [m.n, m.n + 1, m.n + 2]));
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
  });
});
