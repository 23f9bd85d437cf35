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

/** Turns input bytes into UTF-8 bytes; throws FileRejectedError(UNDECODABLE) where input is invalid. */
interface Transcoder {
  write(buf: Buffer): Buffer;
  end(): Buffer;
}

function undecodable(line: number): FileRejectedError {
  return new FileRejectedError(
    'UNDECODABLE',
    `The file is neither valid UTF-8 nor CP932 (Shift_JIS): undecodable bytes at line ${line}. Save it again as "CSV UTF-8" or "CSV (Comma delimited)".`,
    line,
  );
}

/** UTF-8 in, UTF-8 out: validated (natively) and passed through, a split character carried to the next chunk. */
function utf8PassThrough(linesBefore: () => number): Transcoder {
  let carry: Buffer | undefined;
  const check = (buf: Buffer, final: boolean): Buffer => {
    const b = carry ? Buffer.concat([carry, buf]) : buf;
    carry = undefined;
    let cut = b.length;
    if (!final) {
      // Hold back an incomplete character at the end (at most 3 bytes).
      let i = b.length - 1;
      while (i >= 0 && i >= b.length - 3 && (b[i]! & 0xc0) === 0x80) i--;
      if (i >= 0 && b[i]! >= 0xc0) {
        const need = b[i]! >= 0xf0 ? 4 : b[i]! >= 0xe0 ? 3 : 2;
        if (b.length - i < need) cut = i;
      }
    }
    const body = cut === b.length ? b : b.subarray(0, cut);
    if (!isUtf8(body)) {
      const at = firstInvalidUtf8(body);
      throw undecodable(linesBefore() + 1 + countNewlines(body, at === -1 ? body.length : at));
    }
    if (cut !== b.length) carry = Buffer.from(b.subarray(cut));
    return body;
  };
  return {
    write: (buf) => check(buf, false),
    end: () => (carry ? check(Buffer.alloc(0), true) : Buffer.alloc(0)),
  };
}

function iconvTranscoder(encoding: string, linesBefore: () => number, checkReplacement: boolean): Transcoder {
  const dec = iconv.getDecoder(encoding, { stripBOM: true });
  const check = (s: string): Buffer => {
    if (checkReplacement) {
      const at = s.indexOf('\uFFFD');
      if (at !== -1) throw undecodable(linesBefore() + 1 + countNewlinesInString(s, at));
    }
    return Buffer.from(s, 'utf8');
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

  let newlines = 0;
  const linesBefore = () => newlines;
  let coder: Transcoder;
  let pending: Buffer[] = [head];
  info.bomBytes = 0;

  if (startsWith(head, [0xff, 0xfe])) {
    info.encoding = 'utf-16le';
    coder = iconvTranscoder('utf-16le', linesBefore, false);
  } else if (startsWith(head, [0xfe, 0xff])) {
    info.encoding = 'utf-16be';
    coder = iconvTranscoder('utf-16be', linesBefore, false);
  } else {
    if (looksBinary(head)) {
      throw new FileRejectedError('NOT_CSV', 'This is not a CSV file: it contains binary data.');
    }
    if (startsWith(head, [0xef, 0xbb, 0xbf])) {
      info.encoding = 'utf-8-bom';
      info.bomBytes = 3;
      pending = [head.subarray(3)];
      coder = utf8PassThrough(linesBefore);
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
      coder = isUtf8Text ? utf8PassThrough(linesBefore) : iconvTranscoder('cp932', linesBefore, true);
      pending = [buffered];
    }
  }

  for (const buf of pending) {
    const out = coder.write(buf);
    newlines += countNewlines(out, out.length);
    if (out.length) yield out;
  }
  while (!done) {
    const r = await it.next();
    if (r.done) break;
    const out = coder.write(r.value);
    newlines += countNewlines(out, out.length);
    if (out.length) yield out;
  }
  const tail = coder.end();
  if (tail.length) yield tail;
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
