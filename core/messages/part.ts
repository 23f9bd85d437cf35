import { hash } from 'node:crypto';
import { murmur3x86_128of96 } from '../shared/murmur3.ts';
import { NAME_HASH, type NameHashKind } from '../jobs/store.ts';
import { csvText, neutraliseCell } from '../source/write.ts';
import type { RecordErrorCode } from '../shared/errors.ts';
import type { Objects } from '../aws/objects.ts';
import type { ErrorRow } from './wire.ts';
import { LocalEntries } from './zip.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { ErrorRow };

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
 * overwrites the same object):  `RFP3` | u32 meta length | meta JSON (counts, failures) | zip local entries.
 * The meta comes first and is small, so finalize reads every chunk's failures with one short range read;
 * the entries are copied into the job's zip as they are (their headers say all the central directory needs).
 */
export interface PartMeta {
  readonly v: 3;
  readonly site: string;
  readonly token: string;
  readonly chunk: number;
  /** The chunk's range: its first record and its numbered records (finalize accounts for every record). */
  readonly first?: number;
  readonly records?: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly entries: number;
  readonly failures: RecordFailure[];
  /**
   * The names of the part's entries, for the finalize to refuse a name a record of another chunk took without
   * reading the parts twice: per succeeded record with outputs, in entry order, `<n>:<line>:` then one
   * {@link nameHash} per output; records separated by a space. Absent in parts written before it existed.
   */
  readonly names?: string;
  /** How `names` were hashed ({@link NAME_HASH}); absent: SHA-256 (parts of jobs created before it, or older workers). */
  readonly nameHash?: NameHashKind;
  /**
   * The part's rows of results.csv (core/messages/results-row.ts), written by the worker that had the records in
   * hand: one row for every numbered record of the chunk's range — the split's rejections included — in record
   * order, in the sheet's encoding, as the last `bytes` bytes of the part (after the entries). The finalize copies
   * them as they are instead of reading the source again. Absent (the finalize then reads the source as before):
   * parts written before it existed, a retry's or a resubmission's parts, and given-up chunks' parts whose range
   * could not be read. A finalize
   * older than this field fails on a part that has it (its entries do not end where it expects), loudly, and the
   * finalize is tried again by the code deployed with it.
   */
  readonly sheet?: { readonly bytes: number };
}

/** Characters of a {@link nameHash}. */
export const NAME_HASH_CHARS = 16;

/** An entry name as the part's meta keeps it: 96 bits of its hash, base64 (16 characters whatever its length). */
export function nameHash(name: string, kind?: NameHashKind): string {
  if (kind === NAME_HASH) {
    const b = Buffer.allocUnsafe(NAME_HASH_CHARS);
    writeNameHash(b, 0, name, kind);
    return b.toString('latin1');
  }
  // The one-shot hash costs no Hash object, and the first 16 base64 characters of the whole digest are exactly
  // the base64 of its first 12 bytes.
  return hash('sha256', name, 'base64').slice(0, NAME_HASH_CHARS);
}

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
const WORDS = new Uint32Array(3);

/** Writes {@link nameHash}(name, kind) at `b[at]` (room for it checked by the caller); its length. */
export function writeNameHash(b: Buffer, at: number, name: string, kind?: NameHashKind): number {
  if (kind === NAME_HASH) {
    murmur3x86_128of96(name, WORDS);
    // The 12 bytes h1 h2 h3 (big-endian) as base64: four characters for each 24 bits, no string made.
    const w1 = WORDS[0]!;
    const w2 = WORDS[1]!;
    const w3 = WORDS[2]!;
    sextets(b, at, w1 >>> 8);
    sextets(b, at + 4, ((w1 & 0xff) << 16) | (w2 >>> 16));
    sextets(b, at + 8, ((w2 & 0xffff) << 8) | (w3 >>> 24));
    sextets(b, at + 12, w3 & 0xffffff);
    return NAME_HASH_CHARS;
  }
  // Base64 is ASCII: its characters are its bytes, copied (no string kept until the part is written).
  const h = nameHash(name);
  for (let k = 0; k < NAME_HASH_CHARS; k++) b[at + k] = h.charCodeAt(k);
  return NAME_HASH_CHARS;
}

/** 24 bits as four base64 characters at `b[at]`. */
function sextets(b: Buffer, at: number, v: number): void {
  b[at] = BASE64[v >>> 18]!;
  b[at + 1] = BASE64[(v >>> 12) & 63]!;
  b[at + 2] = BASE64[(v >>> 6) & 63]!;
  b[at + 3] = BASE64[v & 63]!;
}

/** A succeeded record's outputs as {@link PartMeta.names} lists them. */
export interface NamedRecord {
  readonly n: number;
  readonly line: number;
  readonly hashes: readonly string[];
}

/**
 * {@link PartMeta.names} read in place, for the finalize's million-record passes: `each` gets every record's number
 * and line and where its hashes are in `names` (`from` to `to`, {@link NAME_HASH_CHARS} apiece), with no object
 * or array per record. Reads what {@link namedRecords} reads.
 */
export function eachNamedRecord(
  names: string | undefined,
  each: (n: number, line: number, from: number, to: number) => void,
): void {
  if (!names) return;
  for (let at = 0; at <= names.length;) {
    let end = names.indexOf(' ', at);
    if (end < 0) end = names.length;
    const c1 = names.indexOf(':', at);
    const c2 = names.indexOf(':', c1 + 1);
    if (c1 < 0 || c1 > end || c2 < 0 || c2 > end) throw new Error(`part names: no "n:line:" at ${at}`);
    each(numberAt(names, at, c1), numberAt(names, c1 + 1, c2), c2 + 1, end);
    at = end + 1;
  }
}

/**
 * `Number(s.slice(from, to))` without the slice when the text is digits (as writeUint writes a record's number and
 * line): two strings a record were a million short-lived strings in the finalize's pass over a 1M-record job.
 */
function numberAt(s: string, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9 || v > MAX_DIGITS_VALUE) return Number(s.slice(from, to));
    v = v * 10 + d;
  }
  return v;
}

/** Above this, one more digit may leave the integers a double holds exactly: Number() reads it. */
const MAX_DIGITS_VALUE = (Number.MAX_SAFE_INTEGER - 9) / 10;

/**
 * {@link PartMeta.names} hashed with `kind` from the names of the part's own entries (`entryNames`, in entry order:
 * a record's outputs are its next entries). For a part whose worker hashed otherwise than its job: one started from
 * the image before a deploy that changed the hash, working for a job created after it.
 */
export function namesRehashed(names: string, entryNames: readonly string[], kind?: NameHashKind): string {
  const out: string[] = [];
  let e = 0;
  eachNamedRecord(names, (n, line, from, to) => {
    const count = Math.ceil((to - from) / NAME_HASH_CHARS);
    let hashes = '';
    for (let k = 0; k < count; k++) {
      const name = entryNames[e++];
      if (name === undefined)
        throw new Error(`part names: record ${n} has more outputs than the part has entries`);
      hashes += nameHash(name, kind);
    }
    out.push(`${n}:${line}:${hashes}`);
  });
  return out.join(' ');
}

/** {@link PartMeta.names}, read back. */
export function namedRecords(names: string | undefined): NamedRecord[] {
  if (!names) return [];
  return names.split(' ').map((r) => {
    const [n, line, joined] = r.split(':') as [string, string, string];
    const hashes: string[] = [];
    for (let i = 0; i < joined.length; i += NAME_HASH_CHARS)
      hashes.push(joined.slice(i, i + NAME_HASH_CHARS));
    return { n: Number(n), line: Number(line), hashes };
  });
}

const MAGIC = Buffer.from('RFP3');

/** Bytes before the meta JSON; the meta's length is the u32 at offset 4. */
export const PART_META_OFFSET = 8;

/**
 * A part object; `sheet` (its results.csv rows) goes last, and its length into the meta. Entries built with
 * room in front ({@link LocalEntries.framed}) get the head and meta written there: the part is not copied whole.
 */
export function encodePart(meta: PartMeta, entries: Buffer | LocalEntries, sheet?: Buffer): Buffer {
  const full = sheet ? { ...meta, sheet: { bytes: sheet.length } } : meta;
  // Well-formed JSON (no lone surrogate): its length in UTF-8 is what write() writes.
  const json = JSON.stringify(full);
  const metaLength = Buffer.byteLength(json, 'utf8');
  const front = PART_META_OFFSET + metaLength;
  const writeFront = (b: Buffer, at: number) => {
    MAGIC.copy(b, at);
    b.writeUInt32LE(metaLength, at + 4);
    b.write(json, at + PART_META_OFFSET, metaLength, 'utf8');
  };
  if (entries instanceof LocalEntries) return entries.framed(front, writeFront, sheet);
  const out = Buffer.allocUnsafe(front + entries.length + (sheet?.length ?? 0));
  writeFront(out, 0);
  entries.copy(out, front);
  sheet?.copy(out, front + entries.length);
  return out;
}

export function partMetaLength(head: Buffer): number {
  if (head.length < PART_META_OFFSET || !head.subarray(0, 4).equals(MAGIC))
    throw new Error('not a Rowfleet part object');
  return head.readUInt32LE(4);
}

/** A whole part object: its meta, its zip entries and its results.csv rows (when it has them). */
export function splitPart(part: Buffer): { meta: PartMeta; entries: Buffer; sheet?: Buffer } {
  const metaEnd = PART_META_OFFSET + partMetaLength(part);
  const meta = decodeJson<PartMeta>(part.subarray(PART_META_OFFSET, metaEnd));
  const sheetAt = part.length - (meta.sheet?.bytes ?? 0);
  if (sheetAt < metaEnd) throw new Error('part: its results.csv rows are cut short');
  return {
    meta,
    entries: part.subarray(metaEnd, sheetAt),
    ...(meta.sheet ? { sheet: part.subarray(sheetAt) } : {}),
  };
}

/**
 * Room kept in front of a chunk's zip entries for its part's head and meta (encodePart writes them there): the
 * meta's `names` take ~35 bytes a record of one output (`<n>:<line>:<hash>`). A meta that does not fit (many
 * failures, many outputs a record) is written into a new buffer with the entries copied after it.
 */
export const partHeadroom = (records: number): number => 4096 + 40 * records;

/** The first bytes read of a part for its meta: a small job's metas fit, a longer one takes a second read. */
export const META_PROBE = 64 * 1024;

/**
 * A stored part's meta, by range reads (its zip entries are not read): its first `probe` bytes, then the rest of
 * the meta when it is longer (a part's names take ~35 bytes a record: a reader that knows the chunk's size asks for
 * as much at once).
 */
export async function readPartMeta(
  objects: Pick<Objects, 'bytes'>,
  key: string,
  probe = META_PROBE,
): Promise<PartMeta> {
  let head = await objects.bytes(key, { start: 0, end: Math.max(probe, PART_META_OFFSET) - 1 });
  const end = PART_META_OFFSET + partMetaLength(head);
  if (head.length < end)
    head = Buffer.concat([head, await objects.bytes(key, { start: head.length, end: end - 1 })]);
  return decodeJson<PartMeta>(head.subarray(PART_META_OFFSET, end));
}

export function decodeJson<T>(bytes: Buffer): T {
  return JSON.parse(bytes.toString('utf8')) as T;
}

export { neutraliseCell };

/** errors.csv: UTF-8 with a BOM (so Excel opens it), columns line,record,code,message,raw, sorted by record. */
export function errorsCsv(failures: readonly RecordFailure[]): Buffer {
  const sorted = byRecord(failures);
  const rows = sorted.map((f) => [String(f.line), String(f.n), f.code, f.message, f.raw]);
  const text = csvText([['line', 'record', 'code', 'message', 'raw'], ...rows], { guard: true });
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
}

const byRecord = (failures: readonly RecordFailure[]) => [...failures].sort((a, b) => a.n - b.n);

/** errors.csv's rows as JSON lines, in the same order (by record), for the API: one {@link ErrorRow} a line. */
export function errorRowsJsonl(failures: readonly RecordFailure[]): Buffer {
  const lines = byRecord(failures).map((f) =>
    JSON.stringify({
      line: f.line,
      record: f.n,
      code: f.code,
      message: f.message,
      raw: f.raw,
    } satisfies ErrorRow),
  );
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}
