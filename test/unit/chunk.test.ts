import { describe, expect, it } from 'vitest';
import { Chunker, decodeChunk } from '../../core/chunk.ts';
import type { CsvRecord } from '../../core/csv.ts';

const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** Characters SQS accepts in a message body: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. */
const SQS_BODY = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

function records(count: number, field: (i: number) => string): CsvRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    n: i + 1,
    line: i + 2,
    fields: [String(i + 1), field(i)],
  }));
}

function chunkAll(chunker: Chunker, recs: CsvRecord[]): string[] {
  const bodies: string[] = [];
  for (const r of recs) {
    const b = chunker.add(r);
    if (b) bodies.push(b);
  }
  const last = chunker.flush();
  if (last) bodies.push(last);
  return bodies;
}

describe('Class: Chunker', () => {
  it('keeps every body within the byte budget and preserves all records in order', async () => {
    // Prepare: records of varying sizes with multi-byte text, a long site id and a tight budget
    const site = 'a'.repeat(31);
    const recs = records(2000, (i) => '山田'.repeat(i % 97) + 'x'.repeat((i * 13) % 211));
    const chunker = new Chunker(site, TOKEN, { maxBytes: 4096, maxRecords: 10_000 });

    // Act
    const bodies = chunkAll(chunker, recs);

    // Assess
    expect(bodies.length).toBeGreaterThan(10);
    expect(chunker.chunks).toBe(bodies.length);
    for (const b of bodies) expect(Buffer.byteLength(b)).toBeLessThanOrEqual(4096);
    const decoded = bodies.map(decodeChunk);
    expect(decoded.map((m) => m.chunk)).toEqual(bodies.map((_, i) => i));
    expect(decoded.every((m) => m.site === site && m.token === TOKEN && m.v === 1)).toBe(true);
    const back = decoded.flatMap((m) => m.records);
    expect(back).toEqual(recs.map((r) => [r.n, r.line, r.fields]));
  });

  it('puts at most maxRecords records in a body', async () => {
    // Prepare
    const recs = records(23, () => 'v');
    const chunker = new Chunker('sakai', TOKEN, { maxBytes: 256 * 1024, maxRecords: 5 });

    // Act
    const bodies = chunkAll(chunker, recs);

    // Assess
    expect(bodies.map((b) => decodeChunk(b).records.length)).toEqual([5, 5, 5, 5, 3]);
  });

  it('fills a body up to the budget rather than sending one record per message', async () => {
    // Prepare: 1,000 records of ~100 bytes fit in one 256 KiB body
    const recs = records(1000, () => 'x'.repeat(90));
    const chunker = new Chunker('sakai', TOKEN, { maxBytes: 256 * 1024, maxRecords: 5000 });

    // Act
    const bodies = chunkAll(chunker, recs);

    // Assess
    expect(bodies).toHaveLength(1);
  });

  it('refuses a record that cannot fit in any message', async () => {
    // Prepare
    const chunker = new Chunker('sakai', TOKEN, { maxBytes: 1024, maxRecords: 10 });

    // Act
    const act = () => chunker.add({ n: 7, line: 8, fields: ['x'.repeat(2000)] });

    // Assess
    expect(act).toThrow(/record 7/);
  });

  it('escapes control characters so bodies stay valid SQS message text', async () => {
    // Prepare
    const chunker = new Chunker('sakai', TOKEN, { maxBytes: 4096, maxRecords: 10 });
    chunker.add({ n: 1, line: 2, fields: ['a\u0000b\u0001c\u001a\u007f', 'tab\there'] });

    // Act
    const body = chunker.flush()!;

    // Assess
    expect(body).toMatch(SQS_BODY);
    expect(decodeChunk(body).records[0]![2]).toEqual(['a\u0000b\u0001c\u001a\u007f', 'tab\there']);
  });

  it('produces valid SQS message text for decoded text holding U+FFFE/U+FFFF (valid UTF-8)', async () => {
    // Prepare: EF BF BF / EF BF BE are valid UTF-8 for U+FFFF / U+FFFE, which SQS refuses in a body
    const fields = ['a\uffffb', 'c\ufffed'];
    const chunker = new Chunker('sakai', TOKEN, { maxBytes: 4096, maxRecords: 10 });
    chunker.add({ n: 1, line: 2, fields });

    // Act
    const body = chunker.flush()!;

    // Assess
    expect(body).toMatch(SQS_BODY);
    expect(decodeChunk(body).records[0]![2]).toEqual(fields);
  });
});

describe('Function: decodeChunk', () => {
  it('refuses a body that is not a chunk message', () => {
    // Prepare
    const body = JSON.stringify({ v: 2, site: 'sakai', token: TOKEN, chunk: 0, records: [] });

    // Act
    const act = () => decodeChunk(body);

    // Assess
    expect(act).toThrow(/not a Rowfleet chunk/);
  });
});
