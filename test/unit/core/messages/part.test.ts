import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeJson,
  eachNamedRecord,
  namedRecords,
  NAME_HASH_CHARS,
  encodePart,
  errorsCsv,
  META_PROBE,
  neutraliseCell,
  PART_META_OFFSET,
  partHeadroom,
  partMetaLength,
  readPartMeta,
  splitPart,
  type PartMeta,
  type RecordFailure,
} from '../../../../core/messages/part.ts';
import { buildLocalEntry, LocalEntries } from '../../../../core/messages/zip.ts';
import { readRecordBatches } from '../../../../core/source/csv.ts';
import { decodeToUtf8 } from '../../../../core/source/decode.ts';

const failure = (
  n: number,
  raw: string,
  message = 'Expected 2 fields as in the header, found 1.',
): RecordFailure => ({
  n,
  line: n + 1,
  code: 'COLUMN_COUNT',
  message,
  raw,
});

describe('Function: errorsCsv', () => {
  it('starts with a UTF-8 BOM and has the columns line,record,code,message,raw', () => {
    // Prepare
    const failures = [failure(3, 'x,y,z'), failure(1, '山田')];

    // Act
    const bytes = errorsCsv(failures);

    // Assess
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const rows = parse(bytes.subarray(3).toString('utf8')) as string[][];
    expect(rows[0]).toEqual(['line', 'record', 'code', 'message', 'raw']);
    expect(rows.slice(1)).toEqual([
      ['2', '1', 'COLUMN_COUNT', 'Expected 2 fields as in the header, found 1.', '山田'],
      ['4', '3', 'COLUMN_COUNT', 'Expected 2 fields as in the header, found 1.', 'x,y,z'],
    ]);
  });

  it("keeps a message and a raw record with a lone LF and a lone CR in one row (Excel's Alt+Enter)", async () => {
    // Prepare
    const failures = [failure(1, '"a\nb",c', 'first line\nsecond line'), failure(2, 'x\ry', 'one\rtwo')];

    // Act
    const rows: string[][] = [];
    for await (const batch of readRecordBatches(
      decodeToUtf8(
        (async function* () {
          yield errorsCsv(failures);
        })(),
      ),
      {
        maxRecordBytes: 1 << 20,
      },
    ))
      for (const e of batch) if (e.kind !== 'rejected') rows.push(e.kind === 'header' ? e.header : e.fields);

    // Assess
    expect(rows).toEqual([
      ['line', 'record', 'code', 'message', 'raw'],
      ['2', '1', 'COLUMN_COUNT', 'first line\nsecond line', '"a\nb",c'],
      ['3', '2', 'COLUMN_COUNT', 'one\rtwo', 'x\ry'],
    ]);
  });

  it('is only the header line when nothing failed', () => {
    // Prepare
    const failures: RecordFailure[] = [];

    // Act
    const text = errorsCsv(failures).subarray(3).toString('utf8');

    // Assess
    expect(text).toBe('line,record,code,message,raw\r\n');
  });

  it.each([['=HYPERLINK("http://evil","x")'], ['+1+2'], ['-2+3'], ['@SUM(A1:A2)'], ['\t=1'], ['\r=1']])(
    'neutralises a cell starting a formula: %j',
    (raw) => {
      // Prepare
      const failures = [failure(1, raw, raw)];

      // Act
      const rows = parse(errorsCsv(failures).subarray(3).toString('utf8'), {
        relax_quotes: true,
      }) as string[][];

      // Assess
      expect(rows[1]![3]).toBe(`'${raw}`);
      expect(rows[1]![4]).toBe(`'${raw}`);
    },
  );

  it('leaves ordinary cells alone', () => {
    // Prepare
    const raws = ['a=b', '1+1', "'quoted", ' =1', '山田'];

    // Act
    const rows = parse(
      errorsCsv(raws.map((r, i) => failure(i + 1, r)))
        .subarray(3)
        .toString('utf8'),
    ) as string[][];

    // Assess
    expect(rows.slice(1).map((r) => r[4])).toEqual(raws);
  });
});

describe('Function: neutraliseCell', () => {
  it('prefixes = + - @ TAB CR with an apostrophe and nothing else', () => {
    // Prepare
    const cells = ['=1', '+1', '-1', '@a', '\tx', '\rx', 'x=1', '', '1'];

    // Act
    const out = cells.map(neutraliseCell);

    // Assess
    expect(out).toEqual(["'=1", "'+1", "'-1", "'@a", "'\tx", "'\rx", 'x=1', '', '1']);
  });
});

describe('Function: encodePart', () => {
  it('round-trips the meta and keeps the zip entries after it', () => {
    // Prepare
    const e = buildLocalEntry('rows/1.json', Buffer.from('{"a":"1"}'));
    const meta: PartMeta = {
      v: 3,
      site: 'sakai',
      token: '0f8fad5b-d9cb-469f-a165-70867728950e',
      chunk: 4,
      succeeded: 1,
      failed: 1,
      entries: 1,
      failures: [failure(2, '=x', 'boom')],
    };

    // Act
    const part = encodePart(meta, e.bytes);

    // Assess
    const split = splitPart(part);
    expect(split.meta).toEqual(meta);
    expect(split.entries.equals(e.bytes)).toBe(true);
    const metaEnd = PART_META_OFFSET + partMetaLength(part.subarray(0, PART_META_OFFSET));
    expect(decodeJson<PartMeta>(part.subarray(PART_META_OFFSET, metaEnd))).toEqual(meta);
    expect(() => partMetaLength(Buffer.from('NOPE0000'))).toThrow(/not a Rowfleet part/);
  });

  it('writes the same part from entries built with room in front, whether the meta fits the room or not', () => {
    // Prepare: entries with no room, little room, and room enough for the meta (a name with non-ASCII text in it)
    const meta: PartMeta = {
      v: 3,
      site: 'sakai',
      token: '0f8fad5b-d9cb-469f-a165-70867728950e',
      chunk: 1,
      succeeded: 2,
      failed: 1,
      entries: 2,
      failures: [failure(3, '山田,"x"', 'boom 😀')],
      names: '1:2:AAAAAAAAAAAAAAAA 2:3:BBBBBBBBBBBBBBBB',
    };
    const sheet = Buffer.from('1,山田,1,2,succeeded,,,rows/1.json\r\n', 'utf8');
    const built = (headroom: number) => {
      const entries = new LocalEntries(undefined, headroom);
      entries.add('rows/1.json', '{"氏名":"山田"}');
      entries.add('rows/2.json', 'x'.repeat(300));
      return entries;
    };
    const plain = encodePart(meta, Buffer.from(built(0).bytes()), sheet);

    for (const headroom of [0, 16, 4096]) {
      // Act
      const part = encodePart(meta, built(headroom), sheet);

      // Assess
      expect(part.equals(plain)).toBe(true);
      const split = splitPart(part);
      expect(split.meta).toEqual({ ...meta, sheet: { bytes: sheet.length } });
      expect(split.entries.equals(built(0).bytes())).toBe(true);
      expect(split.sheet?.equals(sheet)).toBe(true);
    }
    // Without a sheet too
    expect(encodePart(meta, built(4096)).equals(encodePart(meta, Buffer.from(built(0).bytes())))).toBe(true);
  });
});

describe('Function: readPartMeta', () => {
  it('reads a meta that fits its probe at once, and a longer one with a second read, to the same meta', async () => {
    // Prepare: a part of 10,000 records' names (~330 KB of meta), as a large job's chunk has
    const records = 10_000;
    const names = Array.from({ length: records }, (_, i) => `${900_001 + i}:${900_002 + i}:ABCDEFGHIJKLMNOP`);
    const meta: PartMeta = {
      v: 3,
      site: 'sakai',
      token: '0f8fad5b-d9cb-469f-a165-70867728950e',
      chunk: 7,
      succeeded: records,
      failed: 0,
      entries: records,
      failures: [],
      names: names.join(' '),
    };
    const part = encodePart(meta, Buffer.alloc(200_000, 1));
    const reads: number[] = [];
    const objects = {
      bytes: (_key: string, range?: { start?: number; end?: number }) => {
        reads.push((range?.end ?? part.length - 1) - (range?.start ?? 0) + 1);
        return Promise.resolve(part.subarray(range?.start ?? 0, (range?.end ?? part.length - 1) + 1));
      },
    };

    // Act
    const probed = await readPartMeta(objects, 'k', PART_META_OFFSET + partHeadroom(records));
    const probedReads = reads.splice(0);
    const small = await readPartMeta(objects, 'k');

    // Assess: the room a worker keeps for the meta is a probe that holds it
    expect(probed).toEqual(meta);
    expect(probedReads).toHaveLength(1);
    expect(small).toEqual(meta);
    expect(reads).toEqual([META_PROBE, partMetaLength(part) + PART_META_OFFSET - META_PROBE]);
  });
});

describe('Function: eachNamedRecord', () => {
  /** What eachNamedRecord hands out, as namedRecords' shape. */
  const inPlace = (names: string) => {
    const out: { n: number; line: number; hashes: string[] }[] = [];
    eachNamedRecord(names, (n, line, from, to) => {
      const hashes: string[] = [];
      for (let h = from; h < to; h += NAME_HASH_CHARS) hashes.push(names.slice(h, h + NAME_HASH_CHARS));
      out.push({ n, line, hashes });
    });
    return out;
  };
  const hash = fc.stringMatching(/^[A-Za-z0-9+/]{16}$/);
  // As the worker writes them (writeUint: a safe integer's digits, String(v) for anything else).
  const number = fc.oneof(
    fc.nat(),
    fc.constantFrom(0, 9, 10, 99, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 1e21, 1.5),
  );
  const record = fc.record({
    n: number,
    line: number,
    hashes: fc.array(hash, { minLength: 1, maxLength: 3 }),
  });

  it('reads what namedRecords reads, record for record, whatever the numbers', () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), (records) => {
        const names = records.map((r) => `${r.n}:${r.line}:${r.hashes.join('')}`).join(' ');
        const read = inPlace(names);
        expect(read).toEqual(namedRecords(names));
        expect(read).toEqual(records);
      }),
    );
  });

  it('reads nothing from no names, and refuses a record without its "n:line:"', () => {
    expect(inPlace('')).toEqual([]);
    expect(() => inPlace('12:3:AAAAAAAAAAAAAAAA 13AAAAAAAAAAAAAAAA')).toThrow(/no "n:line:"/);
  });
});
