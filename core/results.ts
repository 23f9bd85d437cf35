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
 * A chunk's result object ("part"): `RFP1`, u32 index length, the JSON index, then the zip local entries
 * of its successful records, ready to be copied into the job's zip. Its key is deterministic per chunk,
 * so a redelivered chunk overwrites the same object.
 */
export interface PartIndex {
  readonly v: 1;
  readonly site: string;
  readonly token: string;
  readonly chunk: number;
  readonly succeeded: number;
  readonly failed: number;
  /** [name, crc, csize, usize, method] per entry, in byte order. */
  readonly entries: [string, number, number, number, 0 | 8][];
  readonly failures: RecordFailure[];
}

const MAGIC = Buffer.from('RFP1');
export const PART_HEAD_BYTES = 8;

export function encodePart(index: PartIndex, entryBytes: Buffer[]): Buffer {
  const json = Buffer.from(JSON.stringify(index), 'utf8');
  const head = Buffer.allocUnsafe(PART_HEAD_BYTES);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, ...entryBytes]);
}

/** Length of the index that follows the 8-byte head. */
export function partIndexLength(head: Buffer): number {
  if (head.length < PART_HEAD_BYTES || !head.subarray(0, 4).equals(MAGIC))
    throw new Error('not a Rowfleet part object');
  return head.readUInt32LE(4);
}

export function decodePartIndex(json: Buffer): PartIndex {
  return JSON.parse(json.toString('utf8')) as PartIndex;
}

export function entryMetas(index: PartIndex): EntryMeta[] {
  return index.entries.map(([name, crc, csize, usize, method]) => ({ name, crc, csize, usize, method }));
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
