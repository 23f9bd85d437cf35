import { once } from 'node:events';
import { crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { withRoom, writeUtf8 } from '../shared/bytes.ts';

/**
 * A streaming ZIP writer with ZIP64 support, built for archives of a million small entries.
 *
 * Why not a library: archiver/zip-stream keep ~10 KB per entry until the central directory is written
 * (~10 GB for 1M entries), fflate's Zip writes no ZIP64 records (wrong entry count past 65,535), and
 * yazl compresses every buffered entry at once. Here each entry costs one central-directory record
 * (~60 bytes, kept in large slabs), and entries can be prebuilt elsewhere (by the row workers) because
 * a local header does not depend on its position in the archive.
 */

export interface EntryMeta {
  readonly name: string;
  readonly crc: number;
  readonly csize: number;
  readonly usize: number;
  readonly method: 0 | 8;
}

export interface LocalEntry {
  readonly bytes: Buffer;
  readonly meta: EntryMeta;
}

const LOCAL_SIG = 0x04034b50;
const CENTRAL_SIG = 0x02014b50;
const EOCD_SIG = 0x06054b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const UTF8_FLAG = 0x0800;
/** General-purpose flag bit 3: the sizes and CRC follow the data, in a data descriptor. */
const DESCRIPTOR_FLAG = 0x0008;
const DESCRIPTOR_SIG = 0x08074b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
/** Entries smaller than this are stored: deflate gains little on them and costs time. */
const COMPRESS_MIN = 256;

export const LOCAL_HEADER_SIZE = 30;

/** The entries the finalize writes itself into every job's zip (results.csv is kept free for a results sheet). */
export const FINALIZE_ENTRIES = {
  manifest: 'manifest.json',
  errors: 'errors.csv',
  results: 'results.csv',
} as const;
const RESERVED = new Set<string>(Object.values(FINALIZE_ENTRIES));

/**
 * Why a processor's output may not be an entry of the zip, or undefined when it may: a name must be a relative
 * path of non-empty segments, none `.` or `..`, with `/` as its only separator (no backslash, no drive letter),
 * no control character (NUL included), not one of the names the finalize writes ({@link FINALIZE_ENTRIES}, in
 * any case), and short enough for the header's 16-bit length. Whoever extracts the zip writes only below their
 * folder, and never over the manifest or errors.csv.
 */
export function entryNameProblem(name: string): string | undefined {
  if (plainEntryName(name)) return undefined;
  if (name === '') return 'the name is empty';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'the name holds a control character';
  if (name.includes('\\')) return 'the name holds a backslash (the separator is /)';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'the name is an absolute path';
  const segments = name.split('/');
  if (segments.some((s) => s === '..')) return 'the name has a ".." segment';
  if (segments.some((s) => s === '' || s === '.')) return 'the name has an empty or "." segment';
  if (RESERVED.has(name.toLowerCase())) return `the finalize writes ${name.toLowerCase()} itself`;
  if (Buffer.byteLength(name, 'utf8') > U16_MAX) return `the name is longer than ${U16_MAX} bytes`;
  return undefined;
}

/** The longest of {@link FINALIZE_ENTRIES}' names. */
const RESERVED_MAX = Math.max(...[...RESERVED].map((n) => n.length));

/**
 * Whether a name is one {@link entryNameProblem} accepts, told in one pass without allocating for the names
 * processors give (ASCII letters, digits, `_`, `-`, `.`, segments split by `/`, e.g. `rows/123.json`): a zip of a
 * million entries asks a million times. False means "ask the full rules", not "refused".
 */
function plainEntryName(name: string): boolean {
  if (name.length === 0 || name.length > U16_MAX) return false;
  let segment = 0; // where the current segment starts
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const len = i - segment;
      // Empty, "." or "..": the full rules say which.
      if (len === 0 || (len <= 2 && name.charCodeAt(segment) === 0x2e && name.charCodeAt(i - 1) === 0x2e))
        return false;
      segment = i + 1;
    } else if (!(
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2e ||
      c === 0x5f ||
      c === 0x2d
    ))
      return false;
  }
  return name.length > RESERVED_MAX || !RESERVED.has(name.toLowerCase());
}

/** The DOS date/time pair used for every entry of an archive (one timestamp per archive). */
export function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

const FIXED_STAMP = dosDateTime(new Date(Date.UTC(2020, 0, 1)));

/**
 * An entry this writer can describe: its name fits the header's 16-bit length and its sizes the 32-bit fields
 * (entries carry no ZIP64 extra field; only the archive's count and offsets go ZIP64). Anything else would be
 * written as a corrupt archive, so it is refused with the entry's name.
 */
function checkEntry(name: string, nameLen: number, usize: number, csize: number): void {
  if (nameLen > U16_MAX)
    throw new Error(`zip entry name is ${nameLen} bytes; the limit is ${U16_MAX}: ${name.slice(0, 80)}…`);
  if (usize >= U32_MAX || csize >= U32_MAX) throw new Error(`zip entry ${name} is too large (4 GiB or more)`);
}

/** Deflated when that makes it smaller and it is not tiny; stored otherwise. */
function compressed(raw: Buffer): { method: 0 | 8; body: Buffer } {
  if (raw.length < COMPRESS_MIN) return { method: 0, body: raw };
  const deflated = deflateRawSync(raw, { level: 6 });
  return deflated.length < raw.length ? { method: 8, body: deflated } : { method: 0, body: raw };
}

/**
 * Where the prebuilt local entry at byte `o` of `bytes` ends (as {@link LocalEntries} or {@link buildLocalEntry}
 * write them); throws when no local header starts there or the entry is cut short.
 */
function localEntryEnd(bytes: Buffer, o: number): number {
  if (o + LOCAL_HEADER_SIZE > bytes.length || bytes.readUInt32LE(o) !== LOCAL_SIG)
    throw new Error(`prebuilt zip entries: no local header at byte ${o}`);
  const end =
    o +
    LOCAL_HEADER_SIZE +
    bytes.readUInt16LE(o + 26) +
    bytes.readUInt16LE(o + 28) +
    bytes.readUInt32LE(o + 18);
  if (end > bytes.length) throw new Error(`prebuilt zip entries: entry at byte ${o} is cut short`);
  return end;
}

/** The names of prebuilt local entries, in order, as their headers give them (UTF-8). */
export function localEntryNames(bytes: Buffer): string[] {
  const names: string[] = [];
  for (let o = 0; o < bytes.length;) {
    const end = localEntryEnd(bytes, o);
    names.push(
      bytes.toString('utf8', o + LOCAL_HEADER_SIZE, o + LOCAL_HEADER_SIZE + bytes.readUInt16LE(o + 26)),
    );
    o = end;
  }
  return names;
}

/** Builds one local entry (header + data). Position-independent, so it can be built before its offset is known. */
export function buildLocalEntry(name: string, data: Buffer, stamp = FIXED_STAMP): LocalEntry {
  const nameLen = Buffer.byteLength(name, 'utf8');
  const { method, body } = compressed(data);
  checkEntry(name, nameLen, data.length, body.length);
  const meta: EntryMeta = { name, crc: crc32(data), csize: body.length, usize: data.length, method };
  const bytes = Buffer.allocUnsafe(LOCAL_HEADER_SIZE + nameLen + body.length);
  writeLocalHeader(bytes, 0, method, meta.crc, meta.csize, meta.usize, nameLen, stamp);
  bytes.write(name, LOCAL_HEADER_SIZE, nameLen, 'utf8');
  body.copy(bytes, LOCAL_HEADER_SIZE + nameLen);
  return { bytes, meta };
}

/** A local header (its fields as arguments: no object per entry of a million). */
function writeLocalHeader(
  b: Buffer,
  o: number,
  method: 0 | 8,
  crc: number,
  csize: number,
  usize: number,
  nameLen: number,
  stamp: { time: number; date: number },
): void {
  b.writeUInt32LE(LOCAL_SIG, o);
  b.writeUInt16LE(20, o + 4);
  b.writeUInt16LE(UTF8_FLAG, o + 6);
  b.writeUInt16LE(method, o + 8);
  b.writeUInt16LE(stamp.time, o + 10);
  b.writeUInt16LE(stamp.date, o + 12);
  b.writeUInt32LE(crc >>> 0, o + 14);
  b.writeUInt32LE(csize, o + 18);
  b.writeUInt32LE(usize, o + 22);
  b.writeUInt16LE(nameLen, o + 26);
  b.writeUInt16LE(0, o + 28);
}

/**
 * Builds many local entries into one growing buffer: no buffer per entry, text written in place.
 * The result can be appended to an archive as it is ({@link ZipWriter.addPrebuilt}).
 */
export class LocalEntries {
  private buf: Buffer;
  /** Where the entries begin in `buf`: the room kept in front of them ({@link framed}). */
  private readonly start: number;
  private used: number;
  count = 0;

  constructor(
    private readonly stamp = FIXED_STAMP,
    /** Bytes kept free before the entries, for what goes in front of them ({@link framed}). */
    headroom = 0,
    /**
     * Room made at once after the headroom: for the entries, and what {@link framed} puts after them. Each growth
     * copies what the buffer holds. @default 256 KiB
     */
    room = 256 * 1024,
  ) {
    this.start = headroom;
    this.used = headroom;
    this.buf = Buffer.allocUnsafe(headroom + room);
  }

  private reserve(n: number): void {
    this.buf = withRoom(this.buf, this.used, n);
  }

  add(name: string, data: string | Buffer): void {
    // Written in place first, and measured by what was written: the text is never measured apart (a million
    // entries). Room for the longest UTF-8 the text could take; a large output is measured instead.
    const big = typeof data === 'string' && data.length > BIG_TEXT;
    const usizeMax =
      typeof data === 'string' ? (big ? Buffer.byteLength(data, 'utf8') : data.length * 3) : data.length;
    this.reserve(LOCAL_HEADER_SIZE + name.length * 3 + usizeMax);
    const buf = this.buf;
    const o = this.used;
    const nameLen = writeUtf8(buf, name, o + LOCAL_HEADER_SIZE);
    const at = o + LOCAL_HEADER_SIZE + nameLen;
    const usize = typeof data === 'string' ? writeUtf8(buf, data, at) : data.copy(buf, at);
    const raw = buf.subarray(at, at + usize);
    const crc = crc32(raw);
    let method: 0 | 8 = 0;
    let csize = usize;
    // Deflated when that makes it smaller (compressed() decides); the deflated bytes replace the raw ones in place.
    if (usize >= COMPRESS_MIN) {
      const c = compressed(raw);
      if (c.body !== raw) c.body.copy(buf, at);
      method = c.method;
      csize = c.body.length;
    }
    checkEntry(name, nameLen, usize, csize);
    writeLocalHeader(buf, o, method, crc, csize, usize, nameLen, this.stamp);
    this.used = at + csize;
    this.count++;
  }

  /** The entries built so far (a view, valid until the next add). */
  bytes(): Buffer {
    return this.buf.subarray(this.start, this.used);
  }

  /**
   * The entries with `front` bytes before them (written by `writeFront` at the offset it is given) and `after`
   * after them, as one buffer: built in place when the front fits the headroom — the entries (megabytes for a
   * chunk) are not copied again — else copied into a new one. The last use: nothing is added after.
   */
  framed(front: number, writeFront: (b: Buffer, at: number) => void, after?: Buffer): Buffer {
    const tail = after?.length ?? 0;
    if (front > this.start) {
      const out = Buffer.allocUnsafe(front + this.used - this.start + tail);
      writeFront(out, 0);
      const at = front + this.buf.copy(out, front, this.start, this.used);
      after?.copy(out, at);
      return out;
    }
    this.reserve(tail);
    after?.copy(this.buf, this.used);
    const from = this.start - front;
    writeFront(this.buf, from);
    return this.buf.subarray(from, this.used + tail);
  }
}

/** The deflate level of a streamed entry ({@link ZipWriter.addStream}). */
const STREAM_LEVEL = 1;

/** Text outputs longer than this are measured before they are written (room for 3 bytes a character is too much). */
const BIG_TEXT = 64 * 1024;

const SLAB = 1 << 20;

/** Writes a ZIP archive to `write`, which must apply backpressure by returning a promise. */
export class ZipWriter {
  private offset = 0;
  private count = 0;
  private readonly slabs: Buffer[] = [];
  private slab = Buffer.allocUnsafe(SLAB);
  private slabUsed = 0;

  constructor(
    private readonly write: (chunk: Buffer) => Promise<void>,
    private readonly stamp = FIXED_STAMP,
  ) {}

  get entries(): number {
    return this.count;
  }

  /** Adds an entry from data in memory. */
  async addEntry(name: string, data: Buffer | string): Promise<void> {
    const entry = buildLocalEntry(
      name,
      typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
      this.stamp,
    );
    const m = entry.meta;
    this.recordCentral(m.crc, m.csize, m.usize, m.method, Buffer.from(m.name, 'utf8'), this.offset);
    this.offset += entry.bytes.length;
    await this.write(entry.bytes);
  }

  /** The local header of a streamed entry (sizes and CRC zero: they follow the data in its descriptor). */
  private async streamedHead(name: string): Promise<{ nameBytes: Buffer; offset: number }> {
    const nameBytes = Buffer.from(name, 'utf8');
    checkEntry(name, nameBytes.length, 0, 0);
    const offset = this.offset;
    const head = Buffer.alloc(LOCAL_HEADER_SIZE + nameBytes.length);
    writeLocalHeader(head, 0, 8, 0, 0, 0, nameBytes.length, this.stamp);
    head.writeUInt16LE(UTF8_FLAG | DESCRIPTOR_FLAG, 6);
    nameBytes.copy(head, LOCAL_HEADER_SIZE);
    this.offset += head.length;
    await this.write(head);
    return { nameBytes, offset };
  }

  /** A streamed entry's data descriptor and central record, once its data is written. */
  private async streamedTail(
    name: string,
    nameBytes: Buffer,
    offset: number,
    sums: { crc: number; csize: number; usize: number },
  ): Promise<void> {
    const { crc, csize, usize } = sums;
    checkEntry(name, nameBytes.length, usize, csize);
    const d = Buffer.alloc(16);
    d.writeUInt32LE(DESCRIPTOR_SIG, 0);
    d.writeUInt32LE(crc >>> 0, 4);
    d.writeUInt32LE(csize, 8);
    d.writeUInt32LE(usize, 12);
    this.recordCentral(crc, csize, usize, 8, nameBytes, offset, UTF8_FLAG | DESCRIPTOR_FLAG);
    this.offset += d.length;
    await this.write(d);
  }

  /**
   * Adds an entry deflated beforehand ({@link DeflatedEntry}, ended): the same bytes {@link addStream} writes for
   * the same data, so the data could be deflated while the entries before it were written. Last, as addStream's.
   */
  async addDeflated(name: string, entry: DeflatedEntry): Promise<void> {
    const sums = entry.ended();
    const { nameBytes, offset } = await this.streamedHead(name);
    for (let c = entry.take(); c; c = entry.take()) {
      this.offset += c.length;
      await this.write(c);
    }
    await this.streamedTail(name, nameBytes, offset, sums);
  }

  /**
   * Adds an entry whose data arrives as a stream (deflated as it goes, never whole in memory): its CRC and sizes
   * follow the data in a data descriptor. Write it after every other entry: {@link copyLocalEntries} stops at it.
   */
  async addStream(name: string, data: AsyncIterable<Buffer>): Promise<void> {
    const { nameBytes, offset } = await this.streamedHead(name);
    // Level 1: a streamed entry is a large sheet (results.csv: a row per record); level 6 cost the finalize ~3x the
    // CPU for a few % of bytes on CSV rows (200k rows: 216-236 ms -> 53-71 ms, 3.2 -> 3.0 MB).
    const deflate = createDeflateRaw({ level: STREAM_LEVEL });
    let crc = 0;
    let usize = 0;
    let csize = 0;
    const pump = (async () => {
      for await (const c of deflate as AsyncIterable<Buffer>) {
        csize += c.length;
        this.offset += c.length;
        await this.write(c);
      }
    })();
    pump.catch(() => undefined); // awaited below; a failed write must not be an unhandled rejection meanwhile
    try {
      for await (const c of data) {
        crc = crc32(c, crc);
        usize += c.length;
        checkEntry(name, nameBytes.length, usize, csize);
        // A failed write ends the pump: waiting for a drain that never comes would hang.
        if (!deflate.write(c)) await Promise.race([once(deflate, 'drain'), pump]);
      }
      deflate.end();
    } catch (err) {
      deflate.destroy(err as Error);
      await pump.catch(() => undefined);
      throw err;
    }
    await pump;
    await this.streamedTail(name, nameBytes, offset, { crc, csize, usize });
  }

  /**
   * Appends prebuilt local entries (as {@link LocalEntries} or {@link buildLocalEntry} write them), but those
   * whose index (0 for the first entry of `bytes`) is in `skip`. Their central-directory records are read back
   * from the local headers, so nothing else is needed.
   */
  async addPrebuilt(bytes: Buffer, skip?: ReadonlySet<number>): Promise<number> {
    if (skip && skip.size > 0) return this.addPrebuiltBut(bytes, skip);
    let o = 0;
    let n = 0;
    while (o < bytes.length) {
      const end = localEntryEnd(bytes, o);
      const nameLen = bytes.readUInt16LE(o + 26);
      const csize = bytes.readUInt32LE(o + 18);
      // The name's bytes go from the local header to the central record as they are (never decoded).
      if (this.offset + o < U32_MAX) this.centralFromLocal(bytes, o, nameLen, this.offset + o);
      else
        this.recordCentral(
          bytes.readUInt32LE(o + 14),
          csize,
          bytes.readUInt32LE(o + 22),
          bytes.readUInt16LE(o + 8),
          bytes.subarray(o + LOCAL_HEADER_SIZE, o + LOCAL_HEADER_SIZE + nameLen),
          this.offset + o,
        );
      o = end;
      n++;
    }
    this.offset += bytes.length;
    await this.write(bytes);
    return n;
  }

  /** {@link addPrebuilt} leaving out the entries of `skip`: the others are written run by run. */
  private async addPrebuiltBut(bytes: Buffer, skip: ReadonlySet<number>): Promise<number> {
    let o = 0;
    let i = 0;
    let n = 0;
    let run = -1;
    const flush = async (end: number) => {
      if (run !== -1) await this.addPrebuilt(bytes.subarray(run, end));
      run = -1;
    };
    while (o < bytes.length) {
      const end = localEntryEnd(bytes, o);
      if (skip.has(i)) await flush(o);
      else {
        if (run === -1) run = o;
        n++;
      }
      o = end;
      i++;
    }
    await flush(o);
    return n;
  }

  /**
   * {@link recordCentral} for a prebuilt entry below 4 GiB, the same bytes: its method, CRC, sizes, name length
   * and name copied byte by byte from its local header at `o` (they are laid out alike), the rest written. A
   * million entries: no buffer view and no native copy per entry.
   */
  private centralFromLocal(bytes: Buffer, o: number, nameLen: number, offset: number): void {
    const size = 46 + nameLen;
    const c = this.centralRoom(size);
    const b = this.slab;
    b.writeUInt32LE(CENTRAL_SIG, c);
    b.writeUInt16LE((3 << 8) | 45, c + 4);
    b.writeUInt16LE(20, c + 6);
    b.writeUInt16LE(UTF8_FLAG, c + 8);
    // Method (2), then after the stamp CRC, sizes and name length (14): at 8 and 14 of the local header.
    b[c + 10] = bytes[o + 8]!;
    b[c + 11] = bytes[o + 9]!;
    b.writeUInt16LE(this.stamp.time, c + 12);
    b.writeUInt16LE(this.stamp.date, c + 14);
    for (let k = 0; k < 14; k++) b[c + 16 + k] = bytes[o + 14 + k]!;
    b.writeUInt32LE(0, c + 30); // extra and comment lengths
    b.writeUInt32LE(0, c + 34); // disk and internal attributes
    b.writeUInt32LE((0o100644 << 16) >>> 0, c + 38);
    b.writeUInt32LE(offset, c + 42);
    const from = o + LOCAL_HEADER_SIZE;
    for (let k = 0; k < nameLen; k++) b[c + 46 + k] = bytes[from + k]!;
    this.slabUsed += size;
    this.count++;
  }

  /** Room for a central record of `size` bytes in the current slab (a new one when it is full): its offset there. */
  private centralRoom(size: number): number {
    if (this.slabUsed + size > this.slab.length) {
      this.slabs.push(this.slab.subarray(0, this.slabUsed));
      this.slab = Buffer.allocUnsafe(Math.max(SLAB, size));
      this.slabUsed = 0;
    }
    return this.slabUsed;
  }

  private recordCentral(
    crc: number,
    csize: number,
    usize: number,
    method: number,
    name: Buffer,
    offset: number,
    flags = UTF8_FLAG,
  ): void {
    const nameLen = name.length;
    const zip64 = offset >= U32_MAX;
    const size = 46 + nameLen + (zip64 ? 12 : 0);
    const o = this.centralRoom(size);
    const b = this.slab;
    b.writeUInt32LE(CENTRAL_SIG, o);
    b.writeUInt16LE((3 << 8) | 45, o + 4);
    b.writeUInt16LE(zip64 ? 45 : 20, o + 6);
    b.writeUInt16LE(flags, o + 8);
    b.writeUInt16LE(method, o + 10);
    b.writeUInt16LE(this.stamp.time, o + 12);
    b.writeUInt16LE(this.stamp.date, o + 14);
    b.writeUInt32LE(crc >>> 0, o + 16);
    b.writeUInt32LE(csize, o + 20);
    b.writeUInt32LE(usize, o + 24);
    b.writeUInt16LE(nameLen, o + 28);
    b.writeUInt16LE(zip64 ? 12 : 0, o + 30);
    b.writeUInt16LE(0, o + 32);
    b.writeUInt16LE(0, o + 34);
    b.writeUInt16LE(0, o + 36);
    b.writeUInt32LE((0o100644 << 16) >>> 0, o + 38);
    b.writeUInt32LE(zip64 ? U32_MAX : offset, o + 42);
    name.copy(b, o + 46);
    if (zip64) {
      b.writeUInt16LE(0x0001, o + 46 + nameLen);
      b.writeUInt16LE(8, o + 48 + nameLen);
      b.writeBigUInt64LE(BigInt(offset), o + 50 + nameLen);
    }
    this.slabUsed += size;
    this.count++;
  }

  /** Writes the central directory and the end records (ZIP64 ones when needed). */
  async finish(): Promise<{ bytes: number; entries: number }> {
    this.slabs.push(this.slab.subarray(0, this.slabUsed));
    this.slab = Buffer.alloc(0);
    this.slabUsed = 0;
    const cdOffset = this.offset;
    let cdSize = 0;
    // Each slab let go once written (the upload holds its copy): a million entries' directory (~60 MB) is not
    // kept whole until the last slab is written.
    for (let s = this.slabs.shift(); s; s = this.slabs.shift()) {
      cdSize += s.length;
      await this.write(s);
    }
    this.offset += cdSize;
    const needZip64 = this.count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
    if (needZip64) {
      const z = Buffer.alloc(56 + 20);
      z.writeUInt32LE(ZIP64_EOCD_SIG, 0);
      z.writeBigUInt64LE(44n, 4);
      z.writeUInt16LE((3 << 8) | 45, 12);
      z.writeUInt16LE(45, 14);
      z.writeUInt32LE(0, 16);
      z.writeUInt32LE(0, 20);
      z.writeBigUInt64LE(BigInt(this.count), 24);
      z.writeBigUInt64LE(BigInt(this.count), 32);
      z.writeBigUInt64LE(BigInt(cdSize), 40);
      z.writeBigUInt64LE(BigInt(cdOffset), 48);
      z.writeUInt32LE(ZIP64_LOCATOR_SIG, 56);
      z.writeUInt32LE(0, 60);
      z.writeBigUInt64LE(BigInt(this.offset), 64);
      z.writeUInt32LE(1, 72);
      this.offset += z.length;
      await this.write(z);
    }
    const e = Buffer.alloc(22);
    e.writeUInt32LE(EOCD_SIG, 0);
    e.writeUInt16LE(needZip64 ? U16_MAX : this.count, 8);
    e.writeUInt16LE(needZip64 ? U16_MAX : this.count, 10);
    e.writeUInt32LE(needZip64 ? U32_MAX : cdSize, 12);
    e.writeUInt32LE(needZip64 ? U32_MAX : cdOffset, 16);
    this.offset += e.length;
    await this.write(e);
    return { bytes: this.offset, entries: this.count };
  }
}

/**
 * An entry's data deflated as it comes, kept deflated in memory until {@link ZipWriter.addDeflated} writes it: for
 * an entry written after others whose data is made meanwhile (results.csv, from the parts as their entries are
 * copied), so the data is never kept whole, written out and read back. Deflated as {@link ZipWriter.addStream}
 * deflates (same level, no flush before the end: zlib's output does not depend on how the input was cut), so
 * the bytes are the same.
 */
export class DeflatedEntry {
  private readonly deflate = createDeflateRaw({ level: STREAM_LEVEL, chunkSize: DEFLATED_CHUNK });
  private readonly chunks: Buffer[] = [];
  private crc = 0;
  private usize = 0;
  private csize = 0;
  private failed: Error | undefined;
  private done: Promise<void> | undefined;
  private sums: { crc: number; csize: number; usize: number } | undefined;

  constructor() {
    this.deflate.on('data', (c: Buffer) => {
      this.csize += c.length;
      this.chunks.push(c);
    });
    this.deflate.on('error', (err: Error) => (this.failed = err));
  }

  /** Adds data (deflated on zlib's threads): once it resolves, `b` is consumed, and its buffer may be used again. */
  async write(b: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (b.length === 0) return;
    this.crc = crc32(b, this.crc);
    this.usize += b.length;
    await new Promise<void>((resolve, reject) =>
      this.deflate.write(b, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** No more data: waits for the last deflated bytes. */
  async end(): Promise<void> {
    this.done ??= (async () => {
      const finished = once(this.deflate, 'end');
      this.deflate.end();
      await finished;
      this.sums = { crc: this.crc, csize: this.csize, usize: this.usize };
    })();
    await this.done;
  }

  /** Frees zlib's state when the entry will not be written. */
  destroy(): void {
    this.deflate.destroy();
  }

  /** The sums of the ended entry. */
  ended(): { crc: number; csize: number; usize: number } {
    if (!this.sums) throw new Error('a deflated entry is written once ended');
    return this.sums;
  }

  /** The next deflated chunk, let go of as it is taken (the writer holds its copy). */
  take(): Buffer | undefined {
    return this.chunks.shift();
  }
}

/** Bytes of a {@link DeflatedEntry}'s chunks: few, large buffers for an entry kept whole in memory. */
const DEFLATED_CHUNK = 256 * 1024;

/** Bytes of an archive read at a time when its entries are copied into another ({@link copyLocalEntries}). */
const COPY_WINDOW = 8 * 1024 * 1024;

/**
 * Copies the local entries of an archive this writer wrote (entries back to back from byte 0, sizes in their
 * headers, the central directory after the last) into `zip`, as they are, leaving out the entries named in
 * `skip`. The archive is read in windows of a few MB (`read` gives bytes [start, end] inclusive), so memory stays
 * bounded whatever its size. The entries copied.
 */
export async function copyLocalEntries(
  read: (start: number, end: number) => Promise<Buffer>,
  size: number,
  zip: ZipWriter,
  skip: ReadonlySet<string> = new Set(),
  window = COPY_WINDOW,
  /** Told where a streamed entry (the archive's last, not copied) begins: its local header's offset. */
  onStreamed?: (offset: number, name: string) => void,
): Promise<number> {
  let copied = 0;
  let at = 0;
  let buf = Buffer.alloc(0);
  for (;;) {
    let run = 0;
    let o = 0;
    let ended = false;
    const flush = async (to: number) => {
      if (to > run) copied += await zip.addPrebuilt(buf.subarray(run, to));
    };
    while (o + 4 <= buf.length) {
      if (buf.readUInt32LE(o) !== LOCAL_SIG) {
        ended = true;
        break;
      }
      if (o + LOCAL_HEADER_SIZE > buf.length) break;
      const nameLen = buf.readUInt16LE(o + 26);
      if (o + LOCAL_HEADER_SIZE + nameLen > buf.length) break;
      const name = buf.toString('utf8', o + LOCAL_HEADER_SIZE, o + LOCAL_HEADER_SIZE + nameLen);
      // A streamed entry ({@link ZipWriter.addStream}) is the archive's last: its sizes are not in its header.
      if ((buf.readUInt16LE(o + 6) & DESCRIPTOR_FLAG) !== 0) {
        if (!skip.has(name)) throw new Error(`zip entry ${name} was streamed: it cannot be copied`);
        onStreamed?.(at + o, name);
        ended = true;
        break;
      }
      const end = o + LOCAL_HEADER_SIZE + nameLen + buf.readUInt16LE(o + 28) + buf.readUInt32LE(o + 18);
      if (end > buf.length) break;
      if (skip.has(name)) {
        await flush(o);
        run = end;
      }
      o = end;
    }
    await flush(o);
    if (ended) return copied;
    at += o;
    buf = buf.subarray(o);
    const next = at + buf.length;
    if (next >= size) {
      if (buf.length > 0) throw new Error(`zip entries cut short at byte ${at}`);
      return copied;
    }
    buf = Buffer.concat([buf, await read(next, Math.min(size, next + window) - 1)]);
  }
}
