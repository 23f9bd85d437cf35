import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { readRecords } from '../../../../core/source/csv.ts';
import { decodeText, type DecodeInfo } from '../../../../core/source/decode.ts';
import { FileRejectedError } from '../../../../core/shared/errors.ts';
import { ZipWriter } from '../../../../core/messages/zip.ts';
import { caught, chunksOf, collect } from '../../../helpers/streams.ts';

async function decode(bytes: Buffer, chunkSize = 65536): Promise<{ text: string; info: DecodeInfo }> {
  const info: DecodeInfo = {};
  const text = (await collect(decodeText(chunksOf(bytes, chunkSize), info))).join('');
  return { text, info };
}

/** 1-based line of the byte at `offset` (LF line endings). */
function lineOf(bytes: Buffer, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) n++;
  return n;
}

/**
 * UTF-8 CSV of Japanese names (> 192 KiB) with one 0xFF byte, placed so that the `chunkSize` chunk holding it
 * starts inside a 3-byte character and the bad byte is a few lines into that chunk.
 */
function utf8FileWithBadByte(chunkSize: number): Buffer {
  for (let pad = 0; pad < 64; pad++) {
    const lines = ['id,name', `0,${'x'.repeat(pad)}`];
    let size = 0;
    for (let i = 1; size < 230 * 1024; i++) {
      const line = `${i},山田太郎さん`;
      lines.push(line);
      size += Buffer.byteLength(line) + 1;
    }
    const head = Buffer.from(lines.join('\n') + '\n', 'utf8');
    // Cut at the first chunk boundary after 128 KiB that falls inside a character, then add a few lines.
    for (
      let boundary = Math.ceil((132 * 1024) / chunkSize) * chunkSize;
      boundary < head.length - 200;
      boundary += chunkSize
    ) {
      if ((head[boundary]! & 0xc0) !== 0x80) continue;
      const cut = head.indexOf(0x0a, boundary + 60) + 1;
      return Buffer.concat([
        head.subarray(0, cut),
        Buffer.from('9999,ab'),
        Buffer.from([0xff]),
        Buffer.from('\n10000,c\n'),
      ]);
    }
  }
  throw new Error('no layout found');
}

describe('Function: decodeText', () => {
  it('decodes UTF-8 without a BOM and reports utf-8', async () => {
    // Prepare
    const text = 'id,name,city\n1,山田太郎,堺\n2,"鈴木, 花子",川崎\n';

    // Act
    const r = await decode(Buffer.from(text, 'utf8'));

    // Assess
    expect(r.text).toBe(text);
    expect(r.info.encoding).toBe('utf-8');
  });

  it('strips a UTF-8 BOM and reports utf-8-bom', async () => {
    // Prepare
    const text = 'id,name\n1,東京\n';
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);

    // Act
    const r = await decode(bytes);

    // Assess
    expect(r.text).toBe(text);
    expect(r.text.charCodeAt(0)).not.toBe(0xfeff);
    expect(r.info.encoding).toBe('utf-8-bom');
  });

  it('decodes CP932 incl. trail bytes 0x5C/0x7E (ソ 表 ミ), single 0x5C/0x7E, ～ ① and IBM extensions', async () => {
    // Prepare: ソ = 83 5C, 表 = 95 5C, ミ = 83 7E, ～ = 81 60, ① = 87 40, 髙 = FB FC
    const text = 'id,name,path\r\n1,ソフト表示ミ～①髙,C:\\dir~x\r\n';
    const bytes = iconv.encode(text, 'cp932');
    expect(bytes.includes(Buffer.from([0x83, 0x5c]))).toBe(true);
    expect(bytes.includes(Buffer.from([0x83, 0x7e]))).toBe(true);

    // Act
    const r = await decode(bytes);

    // Assess
    expect(r.info.encoding).toBe('cp932');
    expect(r.text).toBe(text);
  });

  it('decodes CP932 byte 0x1A as U+001A where Node 20 TextDecoder("shift_jis") differs', async () => {
    // Prepare: a field holding 0x1A (SUB) and 0x1C next to Japanese text
    const bytes = Buffer.concat([
      iconv.encode('id,memo\n1,日本', 'cp932'),
      Buffer.from([0x1a, 0x1c, 0x7f]),
      iconv.encode('語\n', 'cp932'),
    ]);
    const expected = 'id,memo\n1,日本\u001a\u001c\u007f語\n';

    // Act
    const r = await decode(bytes);

    // Assess
    expect(r.info.encoding).toBe('cp932');
    expect(r.text).toBe(expected);
    // The reason iconv-lite is used: the WHATWG decoder maps these control bytes differently.
    expect(new TextDecoder('shift_jis').decode(bytes)).not.toBe(expected);
  });

  it('decodes UTF-16LE with a BOM, tab-separated (Excel "Unicode text"), into records', async () => {
    // Prepare
    const text = 'id\tname\tnote\r\n1\t山田\ta,b\r\n2\t鈴木\t"x"\r\n';
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(text, 'utf-16le')]);
    const info: DecodeInfo = {};

    // Act
    const events = await collect(
      readRecords(decodeText(chunksOf(bytes, 7), info), { maxRecordBytes: 1024 * 1024 }),
    );

    // Assess
    expect(info.encoding).toBe('utf-16le');
    expect(events[0]).toMatchObject({
      kind: 'header',
      header: ['id', 'name', 'note'],
      line: 1,
      delimiter: '\t',
    });
    expect(events.slice(1)).toMatchObject([
      { kind: 'record', n: 1, line: 2, fields: ['1', '山田', 'a,b'] },
      { kind: 'record', n: 2, line: 3, fields: ['2', '鈴木', 'x'] },
    ]);
  });

  it('decodes UTF-16LE with a BOM, comma-separated', async () => {
    // Prepare
    const text = 'id,name\r\n1,"山田, 太郎"\r\n';
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(text, 'utf-16le')]);

    // Act
    const r = await decode(bytes, 5);

    // Assess
    expect(r.info.encoding).toBe('utf-16le');
    expect(r.text).toBe(text);
    const events = await collect(readRecords(decodeText(chunksOf(bytes, 5)), { maxRecordBytes: 1024 }));
    expect(events[1]).toMatchObject({ kind: 'record', n: 1, line: 2, fields: ['1', '山田, 太郎'] });
  });

  it('detects CP932 whose first non-ASCII byte comes after 100 KB of ASCII', async () => {
    // Prepare
    const ascii = ['id,name'];
    while (ascii.join('\n').length < 100 * 1024) ascii.push(`${ascii.length},abcdefghij`);
    const text = ascii.join('\n') + '\n' + '99999,山田太郎\n100000,ソ表ミ\n';
    const bytes = iconv.encode(text, 'cp932');
    expect(bytes.findIndex((b) => b >= 0x80)).toBeGreaterThan(100 * 1024);

    // Act
    const streamed = await decode(bytes, 16 * 1024);
    const whole = await decode(bytes, bytes.length);

    // Assess
    expect(streamed.info.encoding).toBe('cp932');
    expect(streamed.text).toBe(text);
    expect(whole.info.encoding).toBe('cp932');
    expect(whole.text).toBe(text);
  });

  it('detects UTF-8 whose first non-ASCII byte comes after 100 KB of ASCII', async () => {
    // Prepare
    const ascii = ['id,name'];
    while (ascii.join('\n').length < 100 * 1024) ascii.push(`${ascii.length},abcdefghij`);
    const text = ascii.join('\n') + '\n' + '99999,山田太郎\n100000,😀\n';
    const bytes = Buffer.from(text, 'utf8');

    // Act
    const streamed = await decode(bytes, 16 * 1024 + 1);

    // Assess
    expect(streamed.info.encoding).toBe('utf-8');
    expect(streamed.text).toBe(text);
  });

  it('rejects bytes valid in no encoding as UNDECODABLE, naming the line (CP932 file)', async () => {
    // Prepare: 0x85 0x40 and 0xA0 are unmapped in CP932; invalid in UTF-8 as well
    const bytes = Buffer.concat([
      iconv.encode('id,name\n1,山田\n2,鈴木\n3,', 'cp932'),
      Buffer.from([0x85, 0x40, 0xa0]),
      Buffer.from('\n4,x\n'),
    ]);

    // Act
    const err = await caught(() => decode(bytes));

    // Assess
    expect(err).toBeInstanceOf(FileRejectedError);
    expect(err.code).toBe('UNDECODABLE');
    expect(err.line).toBe(4);
    expect(err.message).toContain('line 4');
  });

  it.each([65536, 16 * 1024])(
    'rejects a UTF-8 file with an invalid byte far from the start as UNDECODABLE at its line (%i-byte chunks)',
    async (chunkSize) => {
      // Prepare: valid UTF-8 Japanese for > 192 KiB (so the file is decided UTF-8), then one 0xFF byte some
      // lines after a chunk boundary that falls inside a 3-byte character, as stream reads routinely do.
      const bytes = utf8FileWithBadByte(chunkSize);
      const bad = bytes.indexOf(0xff);
      const expectedLine = lineOf(bytes, bad);
      const chunkStart = Math.floor(bad / chunkSize) * chunkSize;
      expect(bytes[chunkStart]! & 0xc0).toBe(0x80);
      expect(lineOf(bytes, chunkStart)).toBeLessThan(expectedLine);

      // Act
      const err = await caught(() => decode(bytes, chunkSize));

      // Assess
      expect(err.code).toBe('UNDECODABLE');
      expect(err.line).toBe(expectedLine);
      expect(err.message).toContain(`line ${expectedLine}`);
    },
  );

  it('rejects a UTF-8 file with an invalid byte in an aligned chunk as UNDECODABLE at its line', async () => {
    // Prepare
    const lines = ['id,name'];
    for (let i = 1; i <= 5000; i++) lines.push(`${i},山田太郎さん`);
    const bytes = Buffer.concat([Buffer.from(lines.join('\n') + '\n5001,ab'), Buffer.from([0xff, 0x0a])]);

    // Act
    const err = await caught(() => decode(bytes, bytes.length));

    // Assess
    expect(err.code).toBe('UNDECODABLE');
    expect(err.line).toBe(5002);
    expect(err.message).toContain('line 5002');
  });

  it('rejects a zip archive as NOT_CSV', async () => {
    // Prepare
    const bytes = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(100, 0x41)]);

    // Act
    const err = await caught(() => decode(bytes));

    // Assess
    expect(err).toBeInstanceOf(FileRejectedError);
    expect(err.code).toBe('NOT_CSV');
    expect(err.message).toMatch(/zip/);
  });

  it('rejects a real .xlsx workbook renamed to .csv as NOT_CSV', async () => {
    // Prepare: an OOXML package is a zip holding [Content_Types].xml and xl/workbook.xml
    const parts: Buffer[] = [];
    const zip = new ZipWriter(async (b) => void parts.push(b));
    await zip.addEntry('[Content_Types].xml', '<?xml version="1.0"?><Types/>');
    await zip.addEntry('xl/workbook.xml', '<?xml version="1.0"?><workbook/>');
    await zip.finish();

    // Act
    const err = await caught(() => decode(Buffer.concat(parts)));

    // Assess
    expect(err.code).toBe('NOT_CSV');
    expect(err.message).toMatch(/xlsx/);
  });

  it('rejects an OLE compound document (old .xls) as NOT_CSV', async () => {
    // Prepare
    const bytes = Buffer.concat([
      Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
      Buffer.alloc(512),
    ]);

    // Act
    const err = await caught(() => decode(bytes));

    // Assess
    expect(err.code).toBe('NOT_CSV');
    expect(err.message).toMatch(/OLE|xls/);
  });

  it('rejects a PDF as NOT_CSV', async () => {
    // Prepare
    const bytes = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n', 'latin1');

    // Act
    const err = await caught(() => decode(bytes));

    // Assess
    expect(err.code).toBe('NOT_CSV');
    expect(err.message).toMatch(/PDF/);
  });

  it('rejects binary data without a known signature as NOT_CSV', async () => {
    // Prepare: bytes 0..255 repeated: many control characters
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));

    // Act
    const err = await caught(() => decode(bytes));

    // Assess
    expect(err.code).toBe('NOT_CSV');
    expect(err.message).toMatch(/binary/);
  });

  it('rejects a 0-byte file as EMPTY_FILE', async () => {
    // Prepare
    const bytes = Buffer.alloc(0);

    // Act
    const err = await caught(() => decode(bytes));

    // Assess
    expect(err).toBeInstanceOf(FileRejectedError);
    expect(err.code).toBe('EMPTY_FILE');
  });
});
