import { describe, expect, it } from 'vitest';
import { Chunker, decodeChunk, type ChunkMessage } from '../../../../core/messages/chunk.ts';
import { readRecords, type RecordEvent } from '../../../../core/source/csv.ts';
import { readRange } from '../../../../core/source/scan.ts';
import { decodeToUtf8, type DecodeInfo } from '../../../../core/source/decode.ts';
import { chunksOf, collect } from '../../../helpers/streams.ts';

const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';
const KEY = `uploads/sakai/${TOKEN}/source.csv`;
const MAX_RECORD = 1024 * 1024;

type Numbered = Exclude<RecordEvent, { kind: 'header' }>;

function csvLine(fields: readonly string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}

/** A CSV with multi-byte text, quoted newlines, mixed line endings, blank lines and two rejected records. */
function sampleFile(count: number): Buffer {
  const lines = [csvLine(['id', '氏名', 'memo'])];
  for (let n = 1; n <= count; n++) {
    if (n % 17 === 0) lines.push(`${n},too,many,fields`);
    else
      lines.push(
        csvLine([String(n), '山田'.repeat(n % 9), n % 5 === 0 ? `a\r\nb ${'x'.repeat(n % 40)}` : 'memo']),
      );
    if (n % 23 === 0) lines.push('');
  }
  return Buffer.from(lines.map((l, i) => l + (i % 3 === 0 ? '\r\n' : '\n')).join(''), 'utf8');
}

/** Chunks a file as the split does: the header's position starts the first chunk. */
async function chunkFile(
  file: Buffer,
  limits: { maxBytes: number; maxRecords: number },
): Promise<{
  header: RecordEvent & { kind: 'header' };
  records: Numbered[];
  chunks: ChunkMessage[];
  utf8: Buffer;
  info: DecodeInfo;
}> {
  const info: DecodeInfo = {};
  const utf8 = Buffer.concat(await collect(decodeToUtf8(chunksOf(file, 4096), info)));
  const events = await collect(readRecords(chunksOf(utf8, 1000), { maxRecordBytes: MAX_RECORD }));
  const header = events[0] as RecordEvent & { kind: 'header' };
  const records = events.slice(1) as Numbered[];
  const chunker = new Chunker('sakai', TOKEN, KEY, header, limits, info.bomBytes ?? 0);
  const chunks: ChunkMessage[] = [];
  for (const r of records) {
    const c = chunker.add(r);
    if (c) chunks.push(c);
  }
  const last = chunker.flush();
  if (last) chunks.push(last);
  expect(chunker.chunks).toBe(chunks.length);
  return { header, records, chunks, utf8, info };
}

/** What a worker reads back from a chunk's byte range of `source`. */
function readBack(
  source: Buffer,
  header: { header: string[]; delimiter: string },
  c: ChunkMessage,
): Numbered[] {
  return readRange(source.subarray(c.start, c.end), {
    header: header.header,
    delimiter: header.delimiter,
    n: c.n,
    line: c.line,
    maxRecordBytes: MAX_RECORD,
  }).filter((e): e is Numbered => e.kind !== 'header');
}

const strip = (e: Numbered) => ({ ...e, end: undefined, endLine: undefined });

describe('Class: Chunker', () => {
  it('covers every record once, in order, with contiguous byte ranges that read back identically', async () => {
    // Prepare
    const file = sampleFile(300);

    // Act
    const { header, records, chunks } = await chunkFile(file, { maxBytes: 2048, maxRecords: 10_000 });

    // Assess
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.map((c) => c.chunk)).toEqual(chunks.map((_, i) => i));
    expect(chunks[0]!.start).toBe(header.end);
    chunks.slice(1).forEach((c, i) => expect(c.start).toBe(chunks[i]!.end));
    expect(chunks.reduce((s, c) => s + c.records, 0)).toBe(records.length);
    const back = chunks.flatMap((c) => readBack(file, header, c));
    expect(back.map(strip)).toEqual(records.map(strip));
    expect(back.filter((e) => e.kind === 'rejected').map((e) => e.n)).toEqual([
      17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255, 272, 289,
    ]);
  });

  it('closes a chunk at the first record that reaches the byte budget', async () => {
    // Prepare
    const file = sampleFile(300);
    const maxBytes = 2048;

    // Act
    const { records, chunks } = await chunkFile(file, { maxBytes, maxRecords: 10_000 });

    // Assess
    for (const c of chunks) {
      const inChunk = records.filter((r) => r.n >= c.n && r.n < c.n + c.records);
      const beforeLast = inChunk.length > 1 ? inChunk[inChunk.length - 2]!.end : c.start;
      expect(beforeLast - c.start).toBeLessThan(maxBytes);
      if (c !== chunks.at(-1)) expect(c.end - c.start).toBeGreaterThanOrEqual(maxBytes);
    }
  });

  it('puts at most maxRecords records in a chunk', async () => {
    // Prepare
    const file = Buffer.from('id,v\n' + Array.from({ length: 23 }, (_, i) => `${i + 1},v\n`).join(''));

    // Act
    const { chunks } = await chunkFile(file, { maxBytes: 256 * 1024, maxRecords: 5 });

    // Assess
    expect(chunks.map((c) => c.records)).toEqual([5, 5, 5, 5, 3]);
    expect(chunks.map((c) => [c.n, c.line])).toEqual([
      [1, 2],
      [6, 7],
      [11, 12],
      [16, 17],
      [21, 22],
    ]);
  });

  it('keeps messages small whatever the records hold (one SQS request per chunk, not per 64 KiB)', async () => {
    // Prepare: ~200 KB of text in 50 records
    const file = Buffer.from(
      'id,text\n' + Array.from({ length: 50 }, (_, i) => `${i + 1},${'長'.repeat(1300)}\n`).join(''),
    );

    // Act
    const { chunks } = await chunkFile(file, { maxBytes: 256 * 1024, maxRecords: 5000 });

    // Assess
    expect(chunks).toHaveLength(1);
    expect(Buffer.byteLength(JSON.stringify(chunks[0]))).toBeLessThan(400);
  });

  it('offsets ranges by the BOM so they address the uploaded file itself', async () => {
    // Prepare
    const file = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), sampleFile(40)]);

    // Act
    const { header, records, chunks, info } = await chunkFile(file, { maxBytes: 512, maxRecords: 7 });

    // Assess
    expect(info).toEqual({ encoding: 'utf-8-bom', bomBytes: 3 });
    expect(chunks[0]!.start).toBe(header.end + 3);
    expect(chunks.at(-1)!.end).toBe(file.length);
    expect(chunks.flatMap((c) => readBack(file, header, c)).map(strip)).toEqual(records.map(strip));
  });
});

describe('Function: decodeChunk', () => {
  it('round-trips a chunk message', () => {
    // Prepare
    const msg: ChunkMessage = {
      v: 2,
      site: 'sakai',
      token: TOKEN,
      chunk: 3,
      key: KEY,
      start: 10,
      end: 99,
      n: 4,
      line: 5,
      records: 2,
    };

    // Act
    const back = decodeChunk(JSON.stringify(msg));

    // Assess
    expect(back).toEqual(msg);
  });

  it('refuses a body that is not a chunk message', () => {
    // Prepare
    const bodies = [
      JSON.stringify({ v: 1, site: 'sakai', token: TOKEN, chunk: 0, records: [] }),
      JSON.stringify({
        v: 2,
        site: 'sakai',
        token: TOKEN,
        chunk: 0,
        key: KEY,
        start: 0,
        end: '9',
        n: 1,
        line: 2,
        records: 1,
      }),
    ];

    // Act
    const acts = bodies.map((b) => () => decodeChunk(b));

    // Assess
    for (const act of acts) expect(act).toThrow(/not a Rowfleet chunk/);
  });
});
