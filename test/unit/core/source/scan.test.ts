import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeToUtf8 } from '../../../../core/source/decode.ts';
import { readRecords, type RecordEvent } from '../../../../core/source/csv.ts';
import { scanRecords, type BoundaryEvent } from '../../../../core/source/scan.ts';
import { caught, chunksOf, collect } from '../../../helpers/streams.ts';

const OPTS = { maxRecordBytes: 1024 * 1024 };

function scan(text: string | Buffer, size = 65536, opts = OPTS): Promise<BoundaryEvent[]> {
  return collect(scanRecords(chunksOf(Buffer.from(text), size), opts));
}

function reference(text: string | Buffer, size = 65536, opts = OPTS): Promise<RecordEvent[]> {
  return collect(readRecords(chunksOf(Buffer.from(text), size), opts));
}

/** The reference's events without the fields of accepted records (the scanner does not build them). */
const withoutFields = (events: RecordEvent[]) =>
  events.map((e) => {
    if (e.kind !== 'record') return e;
    const { fields: _, ...rest } = e;
    return rest;
  });

describe('Function: scanRecords', () => {
  it('gives the header, then numbered records with byte offsets and lines, without their fields', async () => {
    // Prepare
    const lines = ['id,name,city\n', '1,山田,堺\n', '2,"鈴木, 花子",川崎\n'];
    const ends = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i + 1).join('')));

    // Act
    const events = await scan(lines.join(''));

    // Assess
    expect(events).toEqual([
      { kind: 'header', header: ['id', 'name', 'city'], line: 1, delimiter: ',', end: ends[0], endLine: 1 },
      { kind: 'record', n: 1, line: 2, end: ends[1], endLine: 2 },
      { kind: 'record', n: 2, line: 3, end: ends[2], endLine: 3 },
    ]);
  });

  it.each([
    ['blank and all-empty records', 'a,b\n\n1,2\n,\n\n\n3,4\n"",""\n5,6\n'],
    [
      'quoted newlines, mixed CRLF/LF/CR',
      'id,memo\r\n1,"first\nsecond\r\nthird"\n2,plain\r\n\n3,"a\rb"\r4,end',
    ],
    ['wrong column counts and NUL bytes', 'h1,h2\n1,2\n3\n\n4,5\u0000x\n6,7,8\n9,10\n'],
    ['a tab-separated header', '\n \t\nid\tname\r\n1\t"a\tb"\r\n2\tc,d\r\n'],
    ['whitespace-only lines after the header', 'a,b\n1,2\n   \n3,4\n  '],
    ['a last record without a line ending', 'a,b\n1,2\n3,"x\r\ny"'],
  ])('gives the same events as the csv-parse reader: %s', async (_, text) => {
    // Prepare
    const expected = withoutFields(await reference(text));

    // Act
    const whole = await scan(text);
    const bytewise = await scan(text, 1);

    // Assess
    expect(whole).toEqual(expected);
    expect(bytewise).toEqual(expected);
  });

  it('names the rejected record, its field count or NUL field, and its text', async () => {
    // Prepare
    const text = 'h1,h2\n1,2\n3\n\n4,"5\u0000x"\n"a""b",7,8\n';

    // Act
    const events = await scan(text, 3);

    // Assess
    expect(events.filter((e) => e.kind === 'rejected')).toEqual([
      expect.objectContaining({
        n: 2,
        line: 3,
        code: 'COLUMN_COUNT',
        raw: '3',
        message: expect.stringMatching(/Expected 2 fields.*found 1/),
      }),
      expect.objectContaining({
        n: 3,
        line: 5,
        code: 'NUL_BYTE',
        raw: '4,5\u2400x',
        message: expect.stringContaining('"h2"'),
      }),
      expect.objectContaining({ n: 4, line: 6, code: 'COLUMN_COUNT', raw: '"a""b",7,8' }),
    ]);
  });

  it.each([
    ['UNTERMINATED_QUOTE', 4, 'a,b\n1,2\n\n3,"never closed\n4,5\n6,7\n'],
    ['INVALID_QUOTE', 3, 'a,b\n1,2\n"3"x,4\n'],
    ['INVALID_QUOTE', 3, 'a,b\n1,2\n3,4"\n'],
    ['DUPLICATE_HEADER', 3, '\n\nid,name,id\n1,2,3\n'],
    ['BLANK_HEADER', 1, 'id, ,name\n1,2,3\n'],
    ['NO_DATA_ROWS', 3, '\n\nid,name\n,\n'],
    ['EMPTY_FILE', undefined, '\r\n\n\n   \n'],
    ['EMPTY_FILE', undefined, ',,\n""\n'],
  ])('rejects the file as %s naming line %s, as the csv-parse reader does', async (code, line, text) => {
    // Prepare
    const expected = await caught(() => reference(text));

    // Act
    const err = await caught(() => scan(text, 2));

    // Assess
    expect(err.code).toBe(code);
    expect(err.line).toBe(line);
    expect(err.message).toBe(expected.message);
  });

  it("describes a quote inside an unquoted field with csv-parse's own words and line count", async () => {
    // Prepare: csv-parse counts the quoted CRLF on line 2 as two lines in its description
    const text = 'a,b\n"x\r\ny",z"\n';

    // Act
    const err = await caught(() => scan(text, 4));

    // Assess
    expect(err.code).toBe('INVALID_QUOTE');
    expect(err.line).toBe(2);
    expect(err.message).toBe(
      'The CSV cannot be parsed at line 2: Invalid Opening Quote: a quote is found on field 1 at line 4, value is "z"',
    );
    expect(err.message).toBe((await caught(() => reference(text))).message);
  });

  it('keeps a NUL that follows a closing quote in the field, as csv-parse does (NUL_BYTE)', async () => {
    // Prepare
    const text = 'a,b\n"x"\u0000,y\n';

    // Act
    const events = await scan(text);

    // Assess
    expect(events[1]).toMatchObject({ kind: 'rejected', code: 'NUL_BYTE', raw: 'x\u2400,y' });
    expect(events).toEqual(withoutFields(await reference(text)));
  });

  it('reads a long whitespace-only first line in small pieces in linear time', async () => {
    // Prepare: 4 MiB of spaces in 512-byte reads (a copy of all held bytes per read would be 16 GB)
    const text = Buffer.concat([Buffer.alloc(4 * 1024 * 1024, 0x20), Buffer.from('\na,b\n1,2\n')]);

    // Act
    const events = await scan(text, 512);

    // Assess
    expect(events).toEqual([
      { kind: 'header', header: ['a', 'b'], line: 2, delimiter: ',', end: text.length - 4, endLine: 2 },
      { kind: 'record', n: 1, line: 3, end: text.length, endLine: 3 },
    ]);
  });

  describe('record size: the limit and the unit of csv-parse max_record_size', () => {
    const limit = { maxRecordBytes: 10 };

    it.each([
      // Checked before each byte joins a field: finished fields count in UTF-16 code units, the field in progress in bytes.
      ['10 ASCII bytes in one field', true, 'a\n' + 'x'.repeat(10) + '\n'],
      ['11 ASCII bytes in one field (the 11th joins at size 10)', true, 'a\n' + 'x'.repeat(11) + '\n'],
      ['12 ASCII bytes in one field', false, 'a\n' + 'x'.repeat(12) + '\n'],
      ['2 + 9 bytes in two fields (12 bytes with the comma)', true, 'a,b\nab,cdefghijk\n'],
      ['four 3-byte characters in one field (12 bytes)', false, 'a\n山山山山\n'],
      ['3 + 2 finished characters, then 1 byte (18 bytes)', true, 'a,b,c\n山山山,山山,1\n'],
      ['a quoted field: its quotes do not count', true, 'a\n"' + 'x'.repeat(11) + '"\n'],
    ])('%s: accepted %s', async (_, accepted, text) => {
      // Prepare
      const expected = await reference(text, 65536, limit).then(
        (events) => withoutFields(events),
        (err: Error & { code?: string }) => err.code,
      );

      // Act
      const got = await scan(text, 3, limit).then(
        (events) => events,
        (err: Error & { code?: string }) => err.code,
      );

      // Assess
      expect(got).toEqual(expected);
      expect(got !== 'RECORD_TOO_LARGE').toBe(accepted);
    });

    it('rejects a record far above the limit across many reads, naming the line it starts on', async () => {
      // Prepare
      const text = `a,b\n1,2\n3,"${'山'.repeat(2000)}\n${'x'.repeat(2000)}"\n4,5\n`;

      // Act
      const err = await caught(() => scan(text, 7, { maxRecordBytes: 1000 }));

      // Assess
      expect(err.code).toBe('RECORD_TOO_LARGE');
      expect(err.line).toBe(3);
      expect(err.message).toContain('1000');
    });

    it('stops a quoted field that never ends as soon as it passes the limit, without reading on', async () => {
      // Prepare: an endless input
      let read = 0;
      async function* endless(): AsyncGenerator<Buffer> {
        yield Buffer.from('a,b\n1,"');
        for (;;) {
          read += 4096;
          yield Buffer.alloc(4096, 0x78);
        }
      }

      // Act
      const err = await caught(() => collect(scanRecords(endless(), { maxRecordBytes: 100_000 })));

      // Assess
      expect(err.code).toBe('RECORD_TOO_LARGE');
      expect(err.line).toBe(2);
      expect(read).toBeLessThan(100_000 + 2 * 4096);
    });

    it('accepts a record of empty quoted fields longer in bytes than the limit (csv-parse counts none)', async () => {
      // Prepare: 600 one-character names (600 code units); the record has 1,800 bytes but one byte of text
      const width = 600;
      const names = Array.from({ length: width }, (_, i) => String.fromCharCode(0x4e00 + i));
      const text = `${names.join(',')}\n${'"",'.repeat(width - 1)}x\n`;

      // Act
      const events = await scan(text, 500, { maxRecordBytes: 1000 });

      // Assess
      expect(Buffer.byteLength(text.split('\n')[1]!)).toBeGreaterThan(1000);
      expect(events[1]).toMatchObject({ kind: 'record', n: 1, line: 2 });
      expect(events).toEqual(withoutFields(await reference(text, 65536, { maxRecordBytes: 1000 })));
    });
  });
});

describe('Function: readRecords and scanRecords at the start of the text', () => {
  it('count a CRLF split between two reads in the leading blank lines as one line', async () => {
    // Prepare
    const text = '\r\n\r\nid,name\r\n1,2\r\n';

    // Act
    const split = await reference(text, 1);
    const scanned = await scan(text, 1);

    // Assess
    expect(split[0]).toMatchObject({ kind: 'header', line: 3 });
    expect(scanned[0]).toMatchObject({ kind: 'header', line: 3 });
    expect(withoutFields(split)).toEqual(withoutFields(await reference(text)));
  });

  it('keep the leading spaces of the header line when a read ends inside them', async () => {
    // Prepare
    const text = '\n  id,name\n1,2\n';

    // Act
    const split = await reference(text, 3);
    const scanned = await scan(text, 3);

    // Assess
    expect(split[0]).toMatchObject({ kind: 'header', header: ['  id', 'name'], line: 2 });
    expect(scanned[0]).toEqual(split[0]);
  });

  it('detect the delimiter on the whole header line even when the first read holds only part of it', async () => {
    // Prepare: tabs and a comma on the first line: comma-separated
    const text = 'id\tname\tnote,x\n1\t2\t3,4\n';

    // Act
    const split = await reference(text, 4);
    const scanned = await scan(text, 4);

    // Assess
    expect(split[0]).toMatchObject({ kind: 'header', delimiter: ',' });
    expect(scanned[0]).toMatchObject({ kind: 'header', delimiter: ',' });
  });
});

describe('Function: scanRecords when the runtime pools its buffers', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /**
   * A stand-in for the runtime's buffer pool (Node 24's holds every allocation under 32 KiB): each
   * `Buffer.allocUnsafe` is the next slice of one ArrayBuffer, the input's bytes included.
   */
  function pooled(): (size: number) => Buffer<ArrayBuffer> {
    const pool = new ArrayBuffer(1 << 20);
    let used = 0;
    return (size) => {
      const b = Buffer.from(pool, used, size);
      used += size;
      return b;
    };
  }

  it.each([
    ['a tab-separated header after blank lines', '\n \t\nid\tname\r\n1\t"a\tb"\r\n2\tc,d\r\n', 1],
    ['CRLFs split between reads in the leading blank lines', '\r\n\r\nid,name\r\n1,2\r\n', 1],
    [
      'a long run of spaces and blank lines before the header',
      `${' '.repeat(20_000)}\n\n  \n\tid,x\n1,2\n`,
      7,
    ],
  ])(
    'reads the same records when its own store and the input chunks share one ArrayBuffer: %s',
    async (_, text, size) => {
      // Prepare: the file read into the pool, then handed over in views of it (as Buffer.from and a stream do)
      const expected = withoutFields(await reference(text, size));
      const alloc = pooled();
      const bytes = alloc(Buffer.byteLength(text));
      bytes.write(text);
      const spy = vi.spyOn(Buffer, 'allocUnsafe').mockImplementation(alloc);

      // Act
      const events = await collect(scanRecords(chunksOf(bytes, size), OPTS));

      // Assess: the scanner's store came from the pool too
      expect(spy).toHaveBeenCalled();
      expect(events).toEqual(expected);
    },
  );
});

describe('Function: scanRecords on the csv-spectrum corpus and the samples', () => {
  const spectrum = dirname(createRequire(import.meta.url).resolve('csv-spectrum/package.json'));
  const cases = readdirSync(join(spectrum, 'csvs')).map((f) => f.replace(/\.csv$/, ''));

  it.each(cases)(
    '%s: the records csv-spectrum expects (strict: a stray quote is refused), as the csv-parse reader does',
    async (name) => {
      // Prepare
      const csv = readFileSync(join(spectrum, 'csvs', `${name}.csv`));
      const expected = JSON.parse(readFileSync(join(spectrum, 'json', `${name}.json`), 'utf8')) as Record<
        string,
        string
      >[];
      const ref = await reference(csv, 5).catch((err: Error) => err);

      // Act
      const events = await collect(scanRecords(chunksOf(csv, 7), { ...OPTS, withFields: true })).catch(
        (err: Error) => err,
      );

      // Assess
      if (ref instanceof Error) {
        // location_coordinates.csv has a quote inside an unquoted field (37°36'37.8"N): INVALID_QUOTE.
        expect(events).toBeInstanceOf(Error);
        expect(events).toMatchObject({ code: 'INVALID_QUOTE', line: 2, message: ref.message });
        return;
      }
      const [header, ...records] = events as BoundaryEvent[];
      const names = header?.kind === 'header' ? header.header : [];
      expect(
        records.map((r) =>
          r.kind === 'record' ? Object.fromEntries(names.map((h, k) => [h, r.fields![k]])) : r,
        ),
      ).toEqual(expected);
      expect(ref).toEqual(events);
    },
  );

  it.each(['clients.csv', 'clients-cp932.csv', 'bad-rows.csv'])(
    'samples/%s: the events of the csv-parse reader behind the decoder',
    async (name) => {
      // Prepare
      const bytes = readFileSync(join('samples', name));

      // Act
      const events = await collect(scanRecords(decodeToUtf8(chunksOf(bytes, 13)), OPTS));

      // Assess
      expect(events.length).toBeGreaterThan(1);
      expect(events).toEqual(
        withoutFields(await collect(readRecords(decodeToUtf8(chunksOf(bytes, 4096)), OPTS))),
      );
    },
  );
});
