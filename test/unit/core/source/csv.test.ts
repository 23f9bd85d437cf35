import { describe, expect, it } from 'vitest';
import { readRecords, type RecordEvent } from '../../../../core/source/csv.ts';
import { FileRejectedError } from '../../../../core/shared/errors.ts';
import { caught, collect, strings } from '../../../helpers/streams.ts';

const OPTS = { maxRecordBytes: 1024 * 1024 };

function read(text: string | string[], opts = OPTS): Promise<RecordEvent[]> {
  return collect(readRecords(strings(...(Array.isArray(text) ? text : [text])), opts));
}

/** The data events (records and rejected records) as [kind, n, line]. */
function positions(events: RecordEvent[]): [string, number, number][] {
  return events.flatMap((e) =>
    e.kind === 'header' ? [] : [[e.kind, e.n, e.line] as [string, number, number]],
  );
}

describe('Function: readRecords', () => {
  it('yields the header, then records numbered from 1 with their fields and byte positions', async () => {
    // Prepare
    const lines = ['id,name,city\n', '1,山田,堺\n', '2,"鈴木, 花子",川崎\n'];
    const ends = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i + 1).join('')));

    // Act
    const events = await read(lines.join(''));

    // Assess
    expect(events).toEqual([
      { kind: 'header', header: ['id', 'name', 'city'], line: 1, delimiter: ',', end: ends[0], endLine: 1 },
      { kind: 'record', n: 1, line: 2, fields: ['1', '山田', '堺'], end: ends[1], endLine: 2 },
      { kind: 'record', n: 2, line: 3, fields: ['2', '鈴木, 花子', '川崎'], end: ends[2], endLine: 3 },
    ]);
  });

  it('skips blank lines and all-empty records without numbering them, keeping physical lines', async () => {
    // Prepare
    const text = 'a,b\n\n1,2\n,\n\n\n3,4\n"",""\n5,6\n';

    // Act
    const events = await read(text);

    // Assess
    expect(positions(events)).toEqual([
      ['record', 1, 3],
      ['record', 2, 7],
      ['record', 3, 9],
    ]);
    expect(
      events.filter((e) => e.kind === 'record').map((e) => (e.kind === 'record' ? e.fields : [])),
    ).toEqual([
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
  });

  it('gives the physical start line with quoted newlines and mixed CRLF/LF/CR line endings', async () => {
    // Prepare: line 1 header (CRLF); record 1 on lines 2-4 (quoted LF and CRLF inside); record 2 on line 5 (CR);
    // a blank line 6 (LF); record 3 on lines 7-8 (quoted CR inside); record 4 on line 9
    const text = 'id,memo\r\n1,"first\nsecond\r\nthird"\n2,plain\r\n\n3,"a\rb"\r4,end';

    // Act
    const events = await read(text);

    // Assess
    expect(positions(events)).toEqual([
      ['record', 1, 2],
      ['record', 2, 5],
      ['record', 3, 7],
      ['record', 4, 9],
    ]);
    const first = events.find((e) => e.kind === 'record' && e.n === 1);
    expect(first?.kind === 'record' && first.fields[1]).toBe('first\nsecond\r\nthird');
  });

  it('keeps line numbers right when text arrives in small pieces', async () => {
    // Prepare
    const text = 'id,memo\r\n1,"x\ny"\r\n\r\n2,z\n3,w\r';
    const pieces = text.match(/[\s\S]{1,3}/g) ?? [];

    // Act
    const events = await read(pieces);

    // Assess
    expect(positions(events)).toEqual([
      ['record', 1, 2],
      ['record', 2, 5],
      ['record', 3, 6],
    ]);
  });

  it('rejects a record with a wrong column count or a NUL byte on its own; it keeps its number', async () => {
    // Prepare
    const text = 'h1,h2\n1,2\n3\n\n4,5\u0000x\n6,7,8\n9,10\n';

    // Act
    const events = await read(text);

    // Assess
    expect(positions(events)).toEqual([
      ['record', 1, 2],
      ['rejected', 2, 3],
      ['rejected', 3, 5],
      ['rejected', 4, 6],
      ['record', 5, 7],
    ]);
    const rejected = events.filter((e) => e.kind === 'rejected');
    expect(rejected.map((e) => (e.kind === 'rejected' ? e.code : ''))).toEqual([
      'COLUMN_COUNT',
      'NUL_BYTE',
      'COLUMN_COUNT',
    ]);
    const nul = rejected[1];
    expect(nul?.kind === 'rejected' && nul.message).toContain('h2');
    expect(nul?.kind === 'rejected' && nul.raw).toBe('4,5\u2400x');
    const short = rejected[0];
    expect(short?.kind === 'rejected' && short.message).toMatch(/Expected 2 fields.*found 1/);
    expect(short?.kind === 'rejected' && short.raw).toBe('3');
  });

  it('rejects an unterminated quote as UNTERMINATED_QUOTE naming the line where it opens', async () => {
    // Prepare
    const text = 'a,b\n1,2\n\n3,"never closed\n4,5\n6,7\n';

    // Act
    const err = await caught(() => read(text));

    // Assess
    expect(err).toBeInstanceOf(FileRejectedError);
    expect(err.code).toBe('UNTERMINATED_QUOTE');
    expect(err.line).toBe(4);
    expect(err.message).toContain('line 4');
  });

  it('rejects a record above the size limit as RECORD_TOO_LARGE naming its line', async () => {
    // Prepare
    const text = `a,b\n1,2\n3,${'x'.repeat(500)}\n4,5\n`;

    // Act
    const err = await caught(() => read(text, { maxRecordBytes: 100 }));

    // Assess
    expect(err.code).toBe('RECORD_TOO_LARGE');
    expect(err.line).toBe(3);
    expect(err.message).toContain('line 3');
    expect(err.message).toContain('100');
  });

  it('accepts a record just under the size limit', async () => {
    // Prepare
    const text = `a,b\n1,${'x'.repeat(80)}\n`;

    // Act
    const events = await read(text, { maxRecordBytes: 100 });

    // Assess
    expect(positions(events)).toEqual([['record', 1, 2]]);
  });

  it('rejects a header naming a column twice as DUPLICATE_HEADER with the line and the name', async () => {
    // Prepare: the header is on line 3, after two blank lines
    const text = '\n\nid,name,id\n1,2,3\n';

    // Act
    const err = await caught(() => read(text));

    // Assess
    expect(err.code).toBe('DUPLICATE_HEADER');
    expect(err.line).toBe(3);
    expect(err.message).toContain('line 3');
    expect(err.message).toContain('"id"');
  });

  it('rejects a header with an unnamed column as BLANK_HEADER with the line and the column', async () => {
    // Prepare
    const text = 'id, ,name\n1,2,3\n';

    // Act
    const err = await caught(() => read(text));

    // Assess
    expect(err.code).toBe('BLANK_HEADER');
    expect(err.line).toBe(1);
    expect(err.message).toContain('line 1');
    expect(err.message).toContain('Column 2');
  });

  it('rejects a header without data records as NO_DATA_ROWS', async () => {
    // Prepare: only blank lines and all-empty records after the header
    const text = 'id,name\n\n,\n\n';

    // Act
    const err = await caught(() => read(text));

    // Assess
    expect(err.code).toBe('NO_DATA_ROWS');
    expect(err.line).toBe(1);
    expect(err.message).toContain('line 1');
  });

  it('names the header line in NO_DATA_ROWS when the header is not on line 1', async () => {
    // Prepare
    const text = '\n\nid,name\n,\n';

    // Act
    const err = await caught(() => read(text));

    // Assess
    expect(err.code).toBe('NO_DATA_ROWS');
    expect(err.line).toBe(3);
    expect(err.message).toContain('line 3');
  });

  it('rejects a text of blank lines only as EMPTY_FILE', async () => {
    // Prepare
    const pieces = ['\r\n', '\n\n', '   \n'];

    // Act
    const err = await caught(() => read(pieces));

    // Assess
    expect(err.code).toBe('EMPTY_FILE');
  });
});
