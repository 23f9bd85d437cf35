import { describe, expect, it } from 'vitest';
import { errorsCsv, type RecordFailure } from '../../../../core/messages/part.ts';
import { ZipWriter } from '../../../../core/messages/zip.ts';
import { checkZip, expectExactlyOnce, parseErrorsCsv } from '../../../helpers/jepsen.ts';

/** A job's zip as finalize writes it: manifest.json, errors.csv, then the result entries given. */
async function forgeZip(
  o: {
    entries?: string[];
    failures?: number[];
    counts?: { total: number; succeeded: number; failed: number; rejected: number };
  } = {},
): Promise<Buffer> {
  const parts: Buffer[] = [];
  const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)));
  const failures: RecordFailure[] = (o.failures ?? []).map((n) => ({
    n,
    line: n + 1,
    code: 'COLUMN_COUNT',
    message: 'Expected 2 fields, got 3',
    raw: `${n},x,y`,
  }));
  const entries = o.entries ?? [];
  const counts = o.counts ?? {
    total: entries.length + failures.length,
    succeeded: entries.length,
    failed: 0,
    rejected: failures.length,
  };
  await zip.addEntry('manifest.json', JSON.stringify({ state: 'PARTIAL', counts }));
  await zip.addEntry('errors.csv', errorsCsv(failures));
  for (const name of entries) {
    const n = /(\d+)/.exec(name)?.[1] ?? '0';
    await zip.addEntry(name, JSON.stringify({ id: n, name: `name ${n}` }));
  }
  await zip.finish();
  return Buffer.concat(parts);
}

const rows = (...ns: number[]) => ns.map((n) => `rows/${n}.json`);

describe('Function: checkZip (the total-queue check)', () => {
  it('counts every record once: result entries and errors.csv lines are both present', async () => {
    // Prepare
    const zip = await forgeZip({ entries: [...rows(1, 2, 4), 'reports/5.html'], failures: [3] });

    // Act
    const check = await checkZip(zip, 5);

    // Assess
    expect(check.counts).toEqual({
      expected: 5,
      present: 5,
      succeeded: 4,
      failed: 1,
      missing: 0,
      duplicated: 0,
      unexpected: 0,
      corrupted: 0,
    });
    expect(check.failed).toEqual([3]);
    expect(check.errors).toEqual([
      { n: 3, line: 4, code: 'COLUMN_COUNT', message: 'Expected 2 fields, got 3', raw: '3,x,y' },
    ]);
    expectExactlyOnce(check);
  });

  it('finds the missing, the duplicated and the unexpected, and then fails the assertion', async () => {
    // Prepare: 2 missing, 3 twice, 4 both as a result and as a failure, 9 beyond the job's records
    const zip = await forgeZip({ entries: rows(1, 3, 3, 4, 5, 9), failures: [4] });

    // Act
    const check = await checkZip(zip, 6);

    // Assess
    expect(check.missing).toEqual([2, 6]);
    expect(check.duplicated).toEqual([
      { n: 3, times: 2 },
      { n: 4, times: 2 },
    ]);
    expect(check.unexpected).toEqual(['rows/9.json']);
    expect(check.succeeded).toEqual([1, 5]);
    expect(() => expectExactlyOnce(check, 'forged')).toThrow(/forged.*missing \[2,6\]/);
  });

  it('fails when the manifest counts records the zip does not hold', async () => {
    // Prepare: every record is there once, but the manifest claims one more success than there are entries
    const zip = await forgeZip({
      entries: rows(1, 2),
      failures: [3],
      counts: { total: 3, succeeded: 3, failed: 0, rejected: 0 },
    });

    // Act
    const check = await checkZip(zip, 3);

    // Assess
    expect(check.counts.missing + check.counts.duplicated).toBe(0);
    expect(() => expectExactlyOnce(check)).toThrow();
  });

  it("fails on an entry that holds another record's result", async () => {
    // Prepare: rows/2.json holds record 7
    const parts: Buffer[] = [];
    const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)));
    await zip.addEntry(
      'manifest.json',
      JSON.stringify({ state: 'SUCCEEDED', counts: { total: 2, succeeded: 2, failed: 0, rejected: 0 } }),
    );
    await zip.addEntry('errors.csv', errorsCsv([]));
    await zip.addEntry('rows/1.json', '{"id":"1"}');
    await zip.addEntry('rows/2.json', '{"id":"7"}');
    await zip.finish();

    // Act
    const check = await checkZip(Buffer.concat(parts), 2, {
      content: (n, data) =>
        (JSON.parse(data.toString()) as { id: string }).id === String(n) ? undefined : 'wrong record',
    });

    // Assess
    expect(check.corrupted).toEqual([{ n: 2, problem: 'wrong record' }]);
    expect(() => expectExactlyOnce(check)).toThrow();
  });

  it('reads errors.csv as finalize writes it (BOM, CRLF, quoted cells, neutralised formulas)', () => {
    // Prepare
    const csv = errorsCsv([
      { n: 12, line: 14, code: 'PROCESSING_FAILED', message: 'bad, "quoted"\nvalue', raw: '=1+1' },
    ]);

    // Act
    const lines = parseErrorsCsv(csv);

    // Assess
    expect(lines).toEqual([
      { n: 12, line: 14, code: 'PROCESSING_FAILED', message: 'bad, "quoted"\nvalue', raw: "'=1+1" },
    ]);
  });
});
