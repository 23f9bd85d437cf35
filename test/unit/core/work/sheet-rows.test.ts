import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainRowText, SheetRows } from '../../../../core/work/sheet-rows.ts';
import { chunkRecords } from '../../../../core/work/chunk-records.ts';
import { sheetRowText } from '../../../../core/messages/results-row.ts';
import { readRange } from '../../../../core/source/scan.ts';
import type { ChunkMessage } from '../../../../core/messages/chunk.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import type { Objects } from '../../../../core/aws/objects.ts';
import type { RejectedRecord } from '../../../../core/source/csv.ts';
import { RUNNING_JOB } from '../../../helpers/running-job.ts';

/** Cell characters: plain ones, and each one the CSV writer quotes or the formula guard prefixes. */
const cellChar = fc.oneof(
  { arbitrary: fc.constantFrom('a', 'Z', '1', ' ', '.', '山', '😀', '\u00a0', '/'), weight: 8 },
  {
    arbitrary: fc.constantFrom('"', ',', ';', '\t', '\r', '\n', '\ufeff', "'", '=', '+', '-', '@'),
    weight: 1,
  },
);
const cell = fc.string({ unit: cellChar, maxLength: 6 });

describe('Function: plainRowText', () => {
  it('writes a succeeded row exactly as sheetRowText does, or leaves it to it', () => {
    let plain = 0;
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 5 })
          .chain((width) =>
            fc.tuple(
              fc.constant(width),
              fc.array(cell, { minLength: Math.max(0, width - 1), maxLength: width + 1 }),
              fc.record({ n: fc.nat(), line: fc.nat(), output: cell }),
              fc.constantFrom(',', ';', '\t', '||'),
            ),
          ),
        ([width, fields, o, delimiter]) => {
          const fast = plainRowText(fields, width, o, delimiter);
          if (fast !== undefined) {
            plain++;
            expect(fast).toBe(sheetRowText(fields, width, o, delimiter));
          }
        },
      ),
      { numRuns: 3000 },
    );
    // The fast path was taken, not only declined.
    expect(plain).toBeGreaterThan(300);
  });

  it('takes a row of plain values, and leaves one the writer quotes or guards', () => {
    const o = { n: 7, line: 8, output: 'rows/7.json' };
    expect(plainRowText(['1', '山田 太郎', ''], 3, o, ',')).toBe(
      '1,山田 太郎,,7,8,succeeded,,,rows/7.json\r\n',
    );
    for (const v of ['a,b', 'say "hi"', 'two\nlines', '=SUM(1)', '-1', "'=1", '\ufeffx', '\tx', '@x', '+1'])
      expect(plainRowText(['1', v, ''], 3, o, ',')).toBeUndefined();
    expect(plainRowText(['1', 'a'], 3, o, ',')).toBeUndefined();
    expect(
      plainRowText(['1', 'a', 'b'], 3, { ...o, failure: { code: 'X', message: 'm' } }, ','),
    ).toBeUndefined();
    expect(plainRowText(['1', 'a', 'b'], 3, { ...o, output: '-x' }, ',')).toBeUndefined();
  });
});

/** A range's text: records of `width` cells (quoted when the writer would, or at random), blank lines, CR/LF/CRLF. */
const rangeText = (width: number) =>
  fc
    .array(
      fc.record({
        cells: fc.array(cell, { minLength: width - 1, maxLength: width + 1 }),
        quoteAll: fc.boolean(),
        blankBefore: fc.boolean(),
        eol: fc.constantFrom('\r\n', '\n', '\r'),
      }),
      { minLength: 1, maxLength: 8 },
    )
    .map((rows) =>
      rows
        .map(({ cells, quoteAll, blankBefore, eol }) => {
          const line = cells
            .map((c) => (quoteAll || /[",\r\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c))
            .join(',');
          return (blankBefore ? eol : '') + line + eol;
        })
        .join(''),
    );

/** A chunk message of a whole range that reads as `records` numbered records. */
const chunkOf = (bytes: Buffer, records: number): ChunkMessage => ({
  v: 2,
  site: 'sakai',
  token: RUNNING_JOB.token,
  chunk: 0,
  key: 'k',
  start: 0,
  end: bytes.length,
  n: 1,
  line: 1,
  records,
});

/** The range's records and rejections as chunkRecords reads them. */
async function readChunk(job: Job, bytes: Buffer) {
  const objects = { bytes: () => Promise.resolve(bytes) } as unknown as Objects;
  const events = readRange(bytes, { header: job.header!, delimiter: ',', n: 1, line: 1, maxRecordBytes: 0 });
  // A range of blank lines only holds no record: no chunk has it.
  fc.pre(events.length > 0);
  const split = new Set(events.filter((e) => e.kind === 'rejected').map((e) => e.n));
  const rejected: RejectedRecord[] = [];
  const records = await chunkRecords(job, chunkOf(bytes, events.length), objects, 0, split, rejected);
  return { records, rejected };
}

describe('Class: SheetRows', () => {
  it('writes the same bytes with the range at hand (plain records copied) as from the fields', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }).chain((width) => fc.tuple(fc.constant(width), rangeText(width))),
        fc.array(fc.constantFrom('ok', 'failed', 'guarded', 'quoted', 'wide'), {
          minLength: 8,
          maxLength: 8,
        }),
        async ([width, text], outcomes) => {
          const job: Job = { ...RUNNING_JOB, header: Array.from({ length: width }, (_, i) => `c${i}`) };
          const { records, rejected } = await readChunk(job, Buffer.from(text, 'utf8'));
          const fast = new SheetRows(job, rejected, records.lines);
          const slow = new SheetRows(job, rejected);
          records.forEach(([n, line, fields], i) => {
            const kind = outcomes[i % outcomes.length]!;
            const o =
              kind === 'failed'
                ? { n, line, failure: { code: 'X', message: 'no' }, output: '' }
                : {
                    n,
                    line,
                    output:
                      kind === 'guarded'
                        ? '=out'
                        : kind === 'quoted'
                          ? 'a,b'
                          : kind === 'wide'
                            ? `出力/${n}.json`
                            : `rows/${n}.json`,
                  };
            fast.add(fields, o, i);
            slow.add(fields, o);
          });
          expect(fast.bytes().toString('latin1')).toBe(slow.bytes().toString('latin1'));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("copies a plain record's row from the range's bytes, and writes the others from their fields", async () => {
    const job: Job = { ...RUNNING_JOB, header: ['id', 'name'] };
    const { records, rejected } = await readChunk(job, Buffer.from('1,山田\r\n\r\n2,=x\n3,"a"\r\n', 'utf8'));
    expect(records.lines).toBeDefined();
    const sheet = new SheetRows(job, rejected, records.lines);
    // Fields other than the bytes they were read from: a row copied from the range shows the range's.
    records.forEach(([n, line], i) => sheet.add(['other', 'text'], { n, line, output: `rows/${n}.json` }, i));
    expect(sheet.bytes().toString('utf8')).toBe(
      '1,山田,1,1,succeeded,,,rows/1.json\r\n' +
        'other,text,2,3,succeeded,,,rows/2.json\r\n' +
        'other,text,3,4,succeeded,,,rows/3.json\r\n',
    );
  });

  it('copies a long plain record (past the bytes copied one by one) as it copies a short one', async () => {
    const job: Job = { ...RUNNING_JOB, header: ['id', 'name'] };
    const long = '山'.repeat(200);
    const { records, rejected } = await readChunk(job, Buffer.from(`1,${long}\r\n2,b\r\n`, 'utf8'));
    const sheet = new SheetRows(job, rejected, records.lines);
    records.forEach(([n, line], i) => sheet.add(['other', 'text'], { n, line, output: `rows/${n}.json` }, i));
    expect(sheet.bytes().toString('utf8')).toBe(
      `1,${long},1,1,succeeded,,,rows/1.json\r\n2,b,2,2,succeeded,,,rows/2.json\r\n`,
    );
  });
});
