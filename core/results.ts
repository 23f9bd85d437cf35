import { stringify } from 'csv-stringify/sync';
import type { RecordErrorCode } from './errors.ts';
import type { EntryMeta } from './zip.ts';

/** One line of errors.csv. */
export interface RecordFailure {
  readonly n: number;
  readonly line: number;
  readonly code: RecordErrorCode;
  readonly message: string;
  readonly raw: string;
}

/**
 * A chunk's result object ("part"), written under a deterministic key per chunk (a redelivered chunk
 * overwrites the same object):
 *   `RFP2` | u32 meta length | meta JSON (counts, failures) | u32 index length | entries JSON | entry bytes
 * The meta comes first and is small, so finalize reads every chunk's failures with one short range read;
 * the entry bytes are zip local entries, copied into the job's zip as they are.
 */
export interface PartMeta {
  readonly v: 2;
  readonly site: string;
  readonly token: string;
  readonly chunk: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly failures: RecordFailure[];
}

/** [name, crc, csize, usize, method] per entry, in byte order. */
export type PartEntries = [string, number, number, number, 0 | 8][];

const MAGIC = Buffer.from('RFP2');

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

export function encodePart(meta: PartMeta, entries: PartEntries, entryBytes: Buffer[]): Buffer {
  const m = Buffer.from(JSON.stringify(meta), 'utf8');
  const e = Buffer.from(JSON.stringify(entries), 'utf8');
  return Buffer.concat([MAGIC, u32(m.length), m, u32(e.length), e, ...entryBytes]);
}

/** Bytes before the meta JSON; the meta's length is the u32 at offset 4. */
export const PART_META_OFFSET = 8;

export function partMetaLength(head: Buffer): number {
  if (head.length < PART_META_OFFSET || !head.subarray(0, 4).equals(MAGIC))
    throw new Error('not a Rowfleet part object');
  return head.readUInt32LE(4);
}

/** A whole part object: its entry index and the entry bytes. */
export function splitPart(part: Buffer): { meta: PartMeta; entries: PartEntries; data: Buffer } {
  const metaEnd = PART_META_OFFSET + partMetaLength(part);
  const entriesEnd = metaEnd + 4 + part.readUInt32LE(metaEnd);
  return {
    meta: decodeJson<PartMeta>(part.subarray(PART_META_OFFSET, metaEnd)),
    entries: decodeJson<PartEntries>(part.subarray(metaEnd + 4, entriesEnd)),
    data: part.subarray(entriesEnd),
  };
}

export function decodeJson<T>(bytes: Buffer): T {
  return JSON.parse(bytes.toString('utf8')) as T;
}

export function entryMetas(entries: PartEntries): EntryMeta[] {
  return entries.map(([name, crc, csize, usize, method]) => ({ name, crc, csize, usize, method }));
}

/** OWASP CSV injection: a cell that a spreadsheet would read as a formula gets a leading apostrophe. */
export function neutraliseCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/** errors.csv: UTF-8 with a BOM (so Excel opens it), columns line,record,code,message,raw, sorted by record. */
export function errorsCsv(failures: readonly RecordFailure[]): Buffer {
  const sorted = [...failures].sort((a, b) => a.n - b.n);
  const rows = sorted.map((f) =>
    [f.line, f.n, f.code, f.message, f.raw].map((v) => neutraliseCell(String(v))),
  );
  const text = stringify([['line', 'record', 'code', 'message', 'raw'], ...rows], {
    record_delimiter: '\r\n',
  });
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
}
