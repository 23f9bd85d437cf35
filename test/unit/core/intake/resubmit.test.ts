import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { resubmittedRows, type ResubmittedJob } from '../../../../core/intake/resubmit.ts';
import { RESULT_COLUMNS } from '../../../../core/finalize/results-sheet.ts';
import { csvRecord, csvText, neutraliseCell, unguardCell } from '../../../../core/source/write.ts';
import { chunkRecords } from '../../../../core/work/chunk-records.ts';
import type { ChunkMessage } from '../../../../core/messages/chunk.ts';
import type { Objects } from '../../../../core/aws/objects.ts';
import type { Job } from '../../../../core/jobs/store.ts';

const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';
const JOB: ResubmittedJob = {
  token: TOKEN,
  header: ['id', 'name', 'email'],
  delimiter: ',',
  totalRecords: 30,
};
const MAX = 1024 * 1024;

/** Characters a user's cell may hold, the guard's and the CSV's own included. */
const cellChar = fc.constantFrom(
  "'",
  '=',
  '+',
  '-',
  '@',
  '\t',
  '\r',
  '\n',
  '"',
  ',',
  ' ',
  'a',
  '1',
  '顧',
  '客',
);
const cell = fc.string({ unit: cellChar, maxLength: 8 });

/** A results.csv row of record `n`: the job's columns, then the sheet's own. */
const sheetRow = (n: number, fields: readonly string[], status = 'failed') => [
  ...fields,
  String(n),
  String(n + 1),
  status,
  'BAD_ADDRESS',
  'no address',
  '',
];
const SHEET_HEADER = [...JOB.header!, ...RESULT_COLUMNS];

/** A sheet as the finalize writes it (guarded, CRLF), in UTF-8 with a BOM. */
const sheet = (rows: readonly (readonly string[])[], header = SHEET_HEADER) =>
  Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from(csvText([header, ...rows], { guard: true }), 'utf8'),
  ]);

describe('Function: unguardCell', () => {
  it('takes off exactly the formula guard the writer put on, whatever the cell holds', () => {
    fc.assert(
      fc.property(cell, (v) => {
        // Act / Assess
        expect(unguardCell(neutraliseCell(v))).toBe(v);
      }),
    );
  });

  it("guards a cell that starts with apostrophes before a formula's character once more, and leaves a user's cell alone", () => {
    // Act / Assess
    expect(neutraliseCell("'=1")).toBe("''=1");
    expect(unguardCell("''=1")).toBe("'=1");
    expect(unguardCell("'abc")).toBe("'abc");
    expect(unguardCell('=1')).toBe('=1');
  });
});

describe('Function: resubmittedRows', () => {
  it("gives back the values the sheet was written with, through the writer's guard and Excel's quoting", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(cell, cell), { minLength: 1, maxLength: 5 }), async (values) => {
        // Prepare
        const rows = values.map(([name, email], i) => sheetRow(i + 1, [String(i + 1), name, email]));

        // Act
        const read = await resubmittedRows(JOB, sheet(rows), MAX);

        // Assess
        expect([...read.values()]).toEqual(
          values.map(([name, email], i) => ({ n: i + 1, fields: [String(i + 1), name, email] })),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('reads a CP932 sheet with its columns reordered and its rows in any order, by record number', async () => {
    // Prepare
    const header = ['email', 'rowfleet_record', 'name', 'id'];
    const text = csvText([header, ['b@x.jp', '7', '顧客 七', '7'], ['a@x.jp', '2', '顧客 二', '2']]);

    // Act
    const read = await resubmittedRows(JOB, iconv.encode(text, 'cp932'), MAX);

    // Assess
    expect([...read.entries()]).toEqual([
      [7, { n: 7, fields: ['7', '顧客 七', 'b@x.jp'] }],
      [2, { n: 2, fields: ['2', '顧客 二', 'a@x.jp'] }],
    ]);
  });

  it("reads errors.csv's rows from their raw text, a raw the split's rules reject as that record's rejection", async () => {
    // Prepare
    const rows = [
      ['4', '3', 'BAD_ADDRESS', 'no address', csvRecord(['3', 'name, 3', 'c3@x.jp'])],
      ['5', '4', 'BAD_ADDRESS', 'no address', '4,name 4'],
    ];

    // Act
    const read = await resubmittedRows(JOB, sheet(rows, ['line', 'record', 'code', 'message', 'raw']), MAX);

    // Assess
    expect(read.get(3)).toEqual({ n: 3, fields: ['3', 'name, 3', 'c3@x.jp'] });
    expect(read.get(4)).toMatchObject({ n: 4, rejected: { code: 'COLUMN_COUNT', raw: '4,name 4' } });
  });

  it('takes a row with a field too many as rejected (COLUMN_COUNT), its record number read from the end', async () => {
    // Prepare
    const text = csvText([SHEET_HEADER, ['5', 'name 5', 'c5@x.jp', 'extra', ...sheetRow(5, []).slice(0)]]);

    // Act
    const read = await resubmittedRows(JOB, Buffer.from(text, 'utf8'), MAX);

    // Assess
    expect(read.get(5)).toMatchObject({
      n: 5,
      rejected: { code: 'COLUMN_COUNT', message: expect.stringContaining('Expected 9 fields') },
    });
  });

  it.each([
    [
      ['id', 'name', 'mail', 'rowfleet_record'],
      /missing: "email"; not the job's: "mail"/,
      { missing: ['email'], added: ['mail'] },
    ],
    [['id', 'name', 'email', 'note', 'rowfleet_record'], /not the job's: "note"/, { added: ['note'] }],
    [['id', 'email', 'rowfleet_record'], /missing: "name"/, { missing: ['name'] }],
    [['id', 'name', 'email'], /no record column/, { missing: ['rowfleet_record'] }],
  ])('refuses the header %j naming what changed', async (header, named, details) => {
    // Prepare
    const body = Buffer.from(csvText([header, header.map(() => '1')]), 'utf8');

    // Act / Assess
    await expect(resubmittedRows(JOB, body, MAX)).rejects.toMatchObject({
      code: 'RESUBMIT_HEADER_CHANGED',
      status: 422,
      message: expect.stringMatching(named),
      details,
    });
  });

  it('refuses rows naming no record of the job, or one another row names: the first 20 and how many more', async () => {
    // Prepare: 0, 31 (the job has 30), text, blank, then 3 twice, then 22 more unknown
    const named = ['0', '31', 'abc', '', '3', '3', ...Array.from({ length: 22 }, (_, i) => String(100 + i))];
    const rows = named.map((n) => [n, 'x', 'y@x.jp', n, '2', 'failed', '', '', '']);

    // Act / Assess
    await expect(resubmittedRows(JOB, sheet(rows), MAX)).rejects.toMatchObject({
      code: 'RESUBMIT_UNKNOWN_RECORDS',
      status: 422,
      message: expect.stringMatching(
        /^27 rows .*"0" \(line 2\), "31" \(line 3\), "abc" \(line 4\), \(no record number, line 5\), 3 \(again, line 7\), .*"114" \(line 22\), and 7 more\./,
      ),
      details: { count: 27, records: expect.arrayContaining(['"0" (line 2)']) as unknown },
    });
  });
});

describe('Function: chunkRecords (a resubmitted range)', () => {
  const job = { site: 'sakai', token: TOKEN, header: ['id', 'name'], delimiter: ',' } as unknown as Job;
  const source = Buffer.from(
    [
      [3, 4, '3', 'fixed 3'],
      [7, 9, '7', 'line\nbreak'],
      [8, 10, '8', '=x'],
    ]
      .map((r) => csvRecord(r.map(String)) + '\r\n')
      .join(''),
    'utf8',
  );
  const objects = { bytes: () => Promise.resolve(source) } as unknown as Objects;
  const msg = (run: [number, number][]): ChunkMessage => ({
    v: 2,
    site: 'sakai',
    token: TOKEN,
    chunk: 0,
    key: 'jobs/sakai/x/a2/resubmit-1/source.csv',
    start: 0,
    end: source.length,
    n: 3,
    line: 4,
    records: 3,
    attempt: 2,
    run,
    numbered: true,
  });

  it('reads each record with the number and line it carries, and its values', async () => {
    // Act
    const records = await chunkRecords(
      job,
      msg([
        [3, 3],
        [7, 8],
      ]),
      objects,
      MAX,
      new Set([3]),
    );

    // Assess: numbers and lines from the range, the split's rejection of 3 no bar (it was corrected)
    expect(records).toEqual([
      [3, 4, ['3', 'fixed 3']],
      [7, 9, ['7', 'line\nbreak']],
      [8, 10, ['8', '=x']],
    ]);
  });

  it('refuses a range whose records are not the ones its message names', async () => {
    // Act / Assess
    await expect(
      chunkRecords(
        job,
        msg([
          [3, 3],
          [7, 7],
          [9, 9],
        ]),
        objects,
        MAX,
        new Set(),
      ),
    ).rejects.toThrow(/is not record 9/);
  });
});
