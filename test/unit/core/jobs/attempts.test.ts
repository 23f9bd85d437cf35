import { describe, expect, it, vi } from 'vitest';
import { recordJobUsage, type UsageStore } from '../../../../core/usage/store.ts';
import { attemptChunks } from '../../../../core/intake/rerun-failed.ts';
import { attemptsOf, endedAttempt } from '../../../../core/jobs/attempts.ts';
import { asRanges, decodeChunk, runsRecord, type ChunkMessage } from '../../../../core/messages/chunk.ts';
import { copyLocalEntries, ZipWriter } from '../../../../core/messages/zip.ts';
import { readZipText } from '../../../helpers/zip.ts';

const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** A split's plan: chunks of `size` records from record 1, byte ranges of 100 bytes a record. */
function plan(chunks: number, size: number): ChunkMessage[] {
  return Array.from({ length: chunks }, (_, i) => ({
    v: 2 as const,
    site: 'sakai',
    token: TOKEN,
    chunk: i,
    key: `uploads/sakai/${TOKEN}/source.csv`,
    etag: '"abc"',
    start: 10 + i * size * 100,
    end: 10 + (i + 1) * size * 100,
    n: 1 + i * size,
    line: 2 + i * size,
    records: size,
  }));
}

describe('Function: attemptChunks', () => {
  it("sends again only the split's chunks holding the records, same ranges and first numbers, each naming its records", () => {
    // Prepare
    const p = plan(4, 10);

    // Act
    const chunks = attemptChunks(p, [3, 4, 5, 9, 31, 40], 2);

    // Assess
    expect(chunks).toEqual([
      {
        ...p[0],
        chunk: 0,
        attempt: 2,
        run: [
          [3, 5],
          [9, 9],
        ],
      },
      {
        ...p[3],
        chunk: 1,
        attempt: 2,
        run: [
          [31, 31],
          [40, 40],
        ],
      },
    ]);
    expect(chunks.map((c) => decodeChunk(JSON.stringify(c)))).toEqual(chunks);
    expect([3, 4, 5, 6, 9].map((n) => runsRecord(chunks[0]!, n))).toEqual([true, true, true, false, true]);
    expect(runsRecord(p[1]!, 15)).toBe(true);
  });

  it('sends nothing for numbers in no chunk of the job', () => {
    expect(attemptChunks(plan(2, 10), [0, 21, 99], 3)).toEqual([]);
  });
});

describe('Function: asRanges', () => {
  it('joins consecutive numbers', () => {
    expect(asRanges([1, 2, 3, 7, 9, 10])).toEqual([
      [1, 3],
      [7, 7],
      [9, 10],
    ]);
    expect(asRanges([])).toEqual([]);
  });
});

describe('Function: decodeChunk (attempts)', () => {
  it('refuses an attempt or a run that is not whole numbers', () => {
    const base = JSON.stringify(plan(1, 5)[0]);
    const bad = [{ attempt: 0 }, { attempt: 1.5 }, { run: [[1]] }, { run: [['1', 2]] }, { run: 'all' }];
    for (const b of bad) {
      expect(() => decodeChunk(JSON.stringify({ ...JSON.parse(base), ...b }))).toThrow(
        'not a Rowfleet chunk message',
      );
    }
  });
});

describe('Function: attemptsOf / endedAttempt', () => {
  const job = {
    state: 'PARTIAL' as const,
    totalRecords: 10,
    rejected: 1,
    succeeded: 6,
    failed: 3,
    receivedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:01:00.000Z',
  };

  it("describes a job never retried as its one attempt, from the job's own counts", () => {
    expect(attemptsOf(job)).toEqual([
      {
        n: 1,
        state: 'PARTIAL',
        records: 9,
        succeeded: 6,
        failed: 3,
        startedAt: job.receivedAt,
        endedAt: job.finishedAt,
      },
    ]);
  });

  it("ends an attempt with what it added to the job's counts", () => {
    // Prepare: attempt 2 runs the 3 failed records; 2 of them succeed
    const running = {
      ...job,
      state: 'FINALIZING' as const,
      attempt: 2,
      attempts: [
        ...attemptsOf(job),
        {
          n: 2,
          state: 'QUEUED' as const,
          records: 3,
          startedAt: '2026-12-02T00:00:00.000Z',
          before: { succeeded: 6, failed: 0 },
        },
      ],
    };

    // Act
    const live = attemptsOf(running);
    const ended = endedAttempt(running, 'PARTIAL', { succeeded: 8 }, '2026-12-02T00:01:00.000Z');

    // Assess
    expect(live[1]).toMatchObject({ n: 2, state: 'FINALIZING' });
    expect(ended[1]).toMatchObject({ n: 2, state: 'PARTIAL', records: 3, succeeded: 2, failed: 1 });
    expect(ended[0]).toEqual(attemptsOf(job)[0]);
  });
});

describe('Function: copyLocalEntries', () => {
  it("copies an archive's entries into another but the skipped ones, read in windows", async () => {
    // Prepare: an archive of manifest.json, errors.csv and 300 entries (some compressed), as the finalize writes
    const chunks: Buffer[] = [];
    const first = new ZipWriter(async (b) => void chunks.push(Buffer.from(b)));
    await first.addEntry('manifest.json', '{}');
    await first.addEntry('errors.csv', 'line,record\r\n');
    for (let n = 1; n <= 300; n++) await first.addEntry(`rows/${n}.json`, `{"n":${n}}`.padEnd(n * 3, ' '));
    await first.finish();
    const archive = Buffer.concat(chunks);
    const reads: number[] = [];

    // Act: windows of 100 bytes, so reads end inside headers, names and data
    const out: Buffer[] = [];
    const second = new ZipWriter(async (b) => void out.push(Buffer.from(b)));
    await second.addEntry('manifest.json', '{"merged":true}');
    const copied = await copyLocalEntries(
      async (start, end) => {
        reads.push(start);
        return archive.subarray(start, end + 1);
      },
      archive.length,
      second,
      new Set(['manifest.json', 'errors.csv']),
      100,
    );
    await second.finish();
    const merged = await readZipText(Buffer.concat(out));

    // Assess
    expect(copied).toBe(300);
    expect([...merged.keys()]).toEqual([
      'manifest.json',
      ...Array.from({ length: 300 }, (_, i) => `rows/${i + 1}.json`),
    ]);
    expect(merged.get('manifest.json')).toBe('{"merged":true}');
    expect(merged.get('rows/250.json')!.trim()).toBe('{"n":250}');
    expect(reads[0]).toBe(0);
    expect(reads.length).toBeGreaterThan(100);
  });
});

describe('Function: recordJobUsage (attempts)', () => {
  it("records a retry's attempt once, under its own key, as the records it ran and no second job", async () => {
    // Prepare: attempt 2 of a job ran 3 records, 2 of which succeeded
    const add = vi.fn(() => Promise.resolve(true));
    const job = {
      site: 'sakai',
      token: TOKEN,
      state: 'PARTIAL' as const,
      processor: 'json',
      sourceKey: 'k',
      upload: 'direct' as const,
      office: 'main',
      totalRecords: 10,
      rejected: 1,
      succeeded: 8,
      failed: 1,
      chunksDone: 1,
      receivedAt: '2026-12-01T00:00:00.000Z',
      finishedAt: '2026-12-03T00:01:00.000Z',
      attempt: 2,
      attempts: [
        {
          n: 1,
          state: 'PARTIAL' as const,
          records: 9,
          succeeded: 6,
          failed: 3,
          startedAt: '2026-12-01T00:00:00.000Z',
        },
        {
          n: 2,
          state: 'PARTIAL' as const,
          records: 3,
          succeeded: 2,
          failed: 1,
          startedAt: '2026-12-03T00:00:00.000Z',
        },
      ],
    };

    // Act
    await recordJobUsage({ add } as unknown as UsageStore, job);

    // Assess
    expect(add).toHaveBeenCalledWith('sakai', expect.any(String), 'main', `${TOKEN}#2`, {
      jobs: 0,
      rows: 2,
      failedRows: 1,
      rejectedJobs: 0,
    });
  });
});
