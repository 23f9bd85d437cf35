import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { FileRejectedError } from '../shared/errors.ts';

/**
 * Encodings Rowfleet accepts. Detection order: BOM → strict UTF-8 → CP932 (Japanese Excel's "CSV").
 * UTF-16 with a BOM covers Excel's "Unicode text".
 */
export type DetectedEncoding = 'utf-8' | 'utf-8-bom' | 'cp932' | 'utf-16le' | 'utf-16be';

export interface DecodeInfo {
  encoding?: DetectedEncoding;
  /** Bytes of the file before the decoded text (a UTF-8 BOM). */
  bomBytes?: number;
}

const SIGNATURES: { bytes: number[]; what: string }[] = [
  { bytes: [0x50, 0x4b, 0x03, 0x04], what: 'a zip archive (an .xlsx/.docx workbook renamed to .csv?)' },
  { bytes: [0x50, 0x4b, 0x05, 0x06], what: 'an empty zip archive' },
  {
    bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1],
    what: 'an OLE document (an old .xls workbook?)',
  },
  { bytes: [0x25, 0x50, 0x44, 0x46, 0x2d], what: 'a PDF document' },
  { bytes: [0x89, 0x50, 0x4e, 0x47], what: 'a PNG image' },
  { bytes: [0xff, 0xd8, 0xff], what: 'a JPEG image' },
  { bytes: [0x47, 0x49, 0x46, 0x38], what: 'a GIF image' },
  { bytes: [0x1f, 0x8b], what: 'a gzip archive' },
  { bytes: [0x37, 0x7a, 0xbc, 0xaf], what: 'a 7z archive' },
  { bytes: [0x52, 0x61, 0x72, 0x21], what: 'a RAR archive' },
];

const SNIFF_BYTES = 8192;
/** How many bytes after the first non-ASCII byte we look at before choosing UTF-8 or CP932. */
const DECIDE_WINDOW = 64 * 1024;

function startsWith(buf: Buffer, sig: number[]): boolean {
  return buf.length >= sig.length && sig.every((b, i) => buf[i] === b);
}

/** Share of bytes that never appear in text (control characters other than TAB, LF, CR, FF, ESC, SUB). */
function looksBinary(buf: Buffer): boolean {
  const n = Math.min(buf.length, SNIFF_BYTES);
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const b = buf[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b && b !== 0x1a) bad++;
  }
  return bad >= 4 && bad / n > 0.05;
}

/** Byte offset of the first byte that breaks UTF-8, or -1 (an incomplete sequence at the end is not an error). */
export function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      if (i + k >= buf.length) return -1;
      const c = buf[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

function countNewlines(buf: Buffer, end: number): number {
  let n = 0;
  let i = buf.indexOf(0x0a);
  while (i !== -1 && i < end) {
    n++;
    i = buf.indexOf(0x0a, i + 1);
  }
  return n;
}

function countNewlinesInString(s: string, end = s.length): number {
  let n = 0;
  let i = s.indexOf('\n');
  while (i !== -1 && i < end) {
    n++;
    i = s.indexOf('\n', i + 1);
  }
  return n;
}

/**
 * Turns input bytes into UTF-8 bytes (zero or more pieces per input chunk); throws
 * FileRejectedError(UNDECODABLE) where the input is invalid, naming the line: 1 + the line feeds
 * before the bad byte, counted from `lines` (those already passed on before the transcoder started).
 */
interface Transcoder {
  write(buf: Buffer): Buffer[];
  end(): Buffer[];
}

function undecodable(line: number): FileRejectedError {
  return new FileRejectedError(
    'UNDECODABLE',
    `The file is neither valid UTF-8 nor CP932 (Shift_JIS): undecodable bytes at line ${line}. Save it again as "CSV UTF-8" or "CSV (Comma delimited)".`,
    line,
  );
}

/** Length of the UTF-8 sequence a lead byte announces (an invalid lead counts as 4: it fails on completion). */
const sequenceLength = (lead: number) => (lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2);

/**
 * UTF-8 in, UTF-8 out: validated (natively) and passed through without copying. A character split
 * across two input chunks is held back, then passed on as a piece of its own (2-4 bytes) once complete,
 * so no byte reaches the reader before it is validated.
 */
function utf8PassThrough(lines: number): Transcoder {
  let carry: Buffer | undefined;
  const valid = (body: Buffer, out: Buffer[]) => {
    if (body.length === 0) return;
    if (!isUtf8(body)) {
      const at = firstInvalidUtf8(body);
      throw undecodable(lines + 1 + countNewlines(body, at === -1 ? body.length : at));
    }
    lines += countNewlines(body, body.length);
    out.push(body);
  };
  /** Validates `b` but for an incomplete character at its end (kept for the next chunk unless `final`). */
  const check = (b: Buffer, final: boolean, out: Buffer[]): Buffer[] => {
    let cut = b.length;
    if (!final) {
      // Hold back an incomplete character at the end (at most 3 bytes).
      let i = b.length - 1;
      while (i >= 0 && i >= b.length - 3 && (b[i]! & 0xc0) === 0x80) i--;
      if (i >= 0 && b[i]! >= 0xc0 && b.length - i < sequenceLength(b[i]!)) cut = i;
    }
    valid(cut === b.length ? b : b.subarray(0, cut), out);
    if (cut !== b.length) carry = Buffer.from(b.subarray(cut));
    return out;
  };
  return {
    write: (buf) => {
      const held = carry;
      carry = undefined;
      if (!held) return check(buf, false, []);
      const k = sequenceLength(held[0]!) - held.length;
      // A tiny chunk: join it to the held bytes (a few bytes to copy).
      if (buf.length <= 4) return check(Buffer.concat([held, buf]), false, []);
      // Else the held character, completed by the first bytes of this chunk, goes on by itself.
      const out: Buffer[] = [];
      valid(Buffer.concat([held, buf.subarray(0, k)]), out);
      return check(buf.subarray(k), false, out);
    },
    end: () => (carry ? check(carry, true, []) : []),
  };
}

/** CP932 → UTF-8 tables (iconv-lite's mapping), see {@link cp932Tables}. */
interface Cp932Tables {
  /** Per byte: the UTF-8 of its character packed as (length << 24 | bytes), LEAD for a lead byte, 0 if invalid. */
  readonly single: Int32Array;
  /** Per lead and trail byte (lead << 8 | trail): packed UTF-8, 0 if the pair is invalid. */
  readonly pair: Int32Array;
}
const LEAD = -1;
let cp932: Cp932Tables | null | undefined;

function packUtf8(s: string): number {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 3) return 0;
  let v = 0;
  for (const x of b) v = (v << 8) | x;
  return (b.length << 24) | v;
}

/**
 * Tables for a one-pass CP932 → UTF-8 transcoder, built once (on the first CP932 file, ~0.1 s) by asking
 * iconv-lite to decode every byte and every pair of bytes: the mapping is iconv-lite's by construction
 * (unit tests check the transcoder against iconv-lite's decoder byte for byte). Null if iconv-lite's
 * CP932 were ever not of the expected shape (ASCII as itself, one BMP character per byte or pair); the
 * transcoder then falls back to iconv-lite's decoder.
 */
function cp932Tables(): Cp932Tables | null {
  if (cp932 !== undefined) return cp932;
  const single = new Int32Array(256);
  const pair = new Int32Array(65536);
  const one = Buffer.alloc(1);
  const two = Buffer.alloc(2);
  let sane = true;
  for (let b = 0; b < 256; b++) {
    one[0] = b;
    const s = iconv.decode(one, 'cp932');
    if (s.length === 1 && s !== '\uFFFD') {
      single[b] = packUtf8(s);
      if (b < 0x80 && s.charCodeAt(0) !== b) sane = false;
      continue;
    }
    if (b < 0x80) sane = false;
    two[0] = b;
    for (let t = 0; t < 256; t++) {
      two[1] = t;
      const p = iconv.decode(two, 'cp932');
      if (p.length === 1 && p !== '\uFFFD') {
        const v = packUtf8(p);
        if (v === 0) sane = false;
        pair[(b << 8) | t] = v;
        single[b] = LEAD;
      } else if (!p.startsWith('\uFFFD')) sane = false;
    }
  }
  cp932 = sane ? { single, pair } : null;
  return cp932;
}

/**
 * CP932 → UTF-8 in one pass: validated, transcoded and its line feeds counted together, without the
 * string round trip of a decoder (bytes → UTF-16 → string → UTF-8) or a second search for U+FFFD.
 * Rejects exactly where iconv-lite's decoder would put its first U+FFFD: an unmapped byte or pair, or a
 * lead byte at the end of the file.
 */
function cp932Transcoder(lines: number): Transcoder {
  const tables = cp932Tables();
  if (!tables) return iconvTranscoder('cp932', lines, true);
  const { single, pair } = tables;
  let scratch = Buffer.allocUnsafe(0);
  /** A lead byte that ended the last chunk. */
  let held = -1;
  return {
    write(buf) {
      const len = buf.length;
      if (len === 0) return [];
      if (scratch.length < len * 3) scratch = Buffer.allocUnsafe(Math.max(len * 3, 64 * 1024));
      const out = scratch;
      let i = 0;
      let j = 0;
      if (held !== -1) {
        const v = pair[(held << 8) | buf[0]!]!;
        held = -1;
        i = 1;
        if (v === 0) throw undecodable(lines + 1);
        j = writePacked(out, j, v);
      }
      for (; i < len; i++) {
        const b = buf[i]!;
        if (b < 0x80) {
          out[j++] = b;
          if (b === 0x0a) lines++;
          continue;
        }
        let v = single[b]!;
        if (v === LEAD) {
          if (i + 1 === len) {
            held = b;
            break;
          }
          v = pair[(b << 8) | buf[++i]!]!;
        }
        if (v === 0) throw undecodable(lines + 1);
        j = writePacked(out, j, v);
      }
      return j === 0 ? [] : [Buffer.from(out.subarray(0, j))];
    },
    end() {
      if (held !== -1) throw undecodable(lines + 1);
      return [];
    },
  };
}

function writePacked(out: Buffer, j: number, v: number): number {
  const n = v >>> 24;
  if (n === 3) {
    out[j] = (v >>> 16) & 0xff;
    out[j + 1] = (v >>> 8) & 0xff;
    out[j + 2] = v & 0xff;
  } else if (n === 2) {
    out[j] = (v >>> 8) & 0xff;
    out[j + 1] = v & 0xff;
  } else out[j] = v & 0xff;
  return j + n;
}

/**
 * Any encoding iconv-lite decodes, through a string. With `checkReplacement`, a U+FFFD in the text
 * (iconv-lite's mark for an undecodable byte) rejects the file. Without it (UTF-16, which always decodes),
 * line feeds are not counted: nothing can fail.
 */
function iconvTranscoder(encoding: string, lines: number, checkReplacement: boolean): Transcoder {
  const dec = iconv.getDecoder(encoding, { stripBOM: true });
  const check = (s: string): Buffer[] => {
    if (checkReplacement) {
      const at = s.indexOf('\uFFFD');
      if (at !== -1) throw undecodable(lines + 1 + countNewlinesInString(s, at));
      lines += countNewlinesInString(s);
    }
    return s ? [Buffer.from(s, 'utf8')] : [];
  };
  return { write: (buf) => check(dec.write(buf)), end: () => check(dec.end() ?? '') };
}

async function* bytes(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Buffer> {
  for await (const c of source) {
    const b =
      typeof c === 'string'
        ? Buffer.from(c)
        : Buffer.isBuffer(c)
          ? c
          : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    if (b.length > 0) yield b;
  }
}

/**
 * Turns a CSV byte stream of any accepted encoding into UTF-8 bytes, detecting the encoding as it goes,
 * in constant memory. UTF-8 input passes through unchanged (after its BOM, whose length is
 * `info.bomBytes`), so byte offsets in the output are offsets in the file. Rejects non-text files
 * (NOT_CSV), empty files (EMPTY_FILE) and bytes valid in no accepted encoding (UNDECODABLE).
 */
export async function* decodeToUtf8(
  source: AsyncIterable<Uint8Array | string>,
  info: DecodeInfo = {},
): AsyncGenerator<Buffer> {
  const it = bytes(source)[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let done = false;
  while (head.length < SNIFF_BYTES && !done) {
    const r = await it.next();
    if (r.done) done = true;
    else head = head.length === 0 ? r.value : Buffer.concat([head, r.value]);
  }
  if (head.length === 0) throw new FileRejectedError('EMPTY_FILE', 'The file is empty (0 bytes).');
  for (const sig of SIGNATURES) {
    if (startsWith(head, sig.bytes)) {
      throw new FileRejectedError(
        'NOT_CSV',
        `This is not a CSV file: it looks like ${sig.what}. Save it as CSV and upload that.`,
      );
    }
  }

  /** Line feeds passed on before the encoding was decided (ASCII). */
  let newlines = 0;
  let coder: Transcoder;
  let pending: Buffer[] = [head];
  info.bomBytes = 0;

  if (startsWith(head, [0xff, 0xfe])) {
    info.encoding = 'utf-16le';
    coder = iconvTranscoder('utf-16le', 0, false);
  } else if (startsWith(head, [0xfe, 0xff])) {
    info.encoding = 'utf-16be';
    coder = iconvTranscoder('utf-16be', 0, false);
  } else {
    if (looksBinary(head)) {
      throw new FileRejectedError('NOT_CSV', 'This is not a CSV file: it contains binary data.');
    }
    if (startsWith(head, [0xef, 0xbb, 0xbf])) {
      info.encoding = 'utf-8-bom';
      info.bomBytes = 3;
      pending = [head.subarray(3)];
      coder = utf8PassThrough(0);
    } else {
      // Undecided: ASCII is the same in both encodings; choose at the first non-ASCII byte.
      let buffered: Buffer = head;
      let firstHigh = buffered.findIndex((b) => b >= 0x80);
      while (firstHigh === -1 && !done) {
        newlines += countNewlines(buffered, buffered.length);
        yield buffered;
        const r = await it.next();
        if (r.done) {
          done = true;
          buffered = Buffer.alloc(0);
        } else {
          buffered = r.value;
          firstHigh = buffered.findIndex((b) => b >= 0x80);
        }
      }
      while (firstHigh !== -1 && buffered.length - firstHigh < DECIDE_WINDOW && !done) {
        const r = await it.next();
        if (r.done) done = true;
        else buffered = Buffer.concat([buffered, r.value]);
      }
      const window = firstHigh === -1 ? buffered : buffered.subarray(firstHigh, firstHigh + DECIDE_WINDOW);
      const isUtf8Text =
        firstHigh === -1 ||
        firstInvalidUtf8(window.subarray(0, done ? window.length : Math.max(0, window.length - 4))) === -1;
      info.encoding = isUtf8Text ? 'utf-8' : 'cp932';
      coder = isUtf8Text ? utf8PassThrough(newlines) : cp932Transcoder(newlines);
      pending = [buffered];
    }
  }

  for (const buf of pending) yield* coder.write(buf);
  while (!done) {
    const r = await it.next();
    if (r.done) break;
    yield* coder.write(r.value);
  }
  yield* coder.end();
}

/** {@link decodeToUtf8} as text. */
export async function* decodeText(
  source: AsyncIterable<Uint8Array | string>,
  info: DecodeInfo = {},
): AsyncGenerator<string> {
  const dec = new TextDecoder('utf-8');
  for await (const b of decodeToUtf8(source, info)) {
    const s = dec.decode(b, { stream: true });
    if (s) yield s;
  }
  const tail = dec.decode();
  if (tail) yield tail;
}
