import iconv from 'iconv-lite';
import { FileRejectedError } from './errors.ts';

/**
 * Encodings Rowfleet accepts. Detection order: BOM → strict UTF-8 → CP932 (Japanese Excel's "CSV").
 * UTF-16 with a BOM covers Excel's "Unicode text".
 */
export type DetectedEncoding = 'utf-8' | 'utf-8-bom' | 'cp932' | 'utf-16le' | 'utf-16be';

export interface DecodeInfo {
  encoding?: DetectedEncoding;
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

function countNewlines(buf: Uint8Array, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (buf[i] === 0x0a) n++;
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

interface TextDecoderLike {
  write(buf: Buffer): string;
  end(): string;
}

function utf8Decoder(linesBefore: () => number): TextDecoderLike {
  const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const fail = (buf: Buffer): never => {
    const at = firstInvalidUtf8(buf);
    const line = linesBefore() + 1 + countNewlines(buf, at === -1 ? buf.length : at);
    throw new FileRejectedError(
      'UNDECODABLE',
      `The file is neither valid UTF-8 nor CP932 (Shift_JIS): undecodable bytes at line ${line}. Save it again as "CSV UTF-8" or "CSV (Comma delimited)".`,
      line,
    );
  };
  return {
    write(buf) {
      try {
        return dec.decode(buf, { stream: true });
      } catch {
        return fail(buf);
      }
    },
    end() {
      try {
        return dec.decode();
      } catch {
        return fail(Buffer.alloc(0));
      }
    },
  };
}

function iconvDecoder(
  encoding: string,
  linesBefore: () => number,
  checkReplacement: boolean,
): TextDecoderLike {
  const dec = iconv.getDecoder(encoding, { stripBOM: true });
  const check = (s: string): string => {
    if (checkReplacement) {
      const at = s.indexOf('\uFFFD');
      if (at !== -1) {
        const line = linesBefore() + 1 + countNewlinesInString(s, at);
        throw new FileRejectedError(
          'UNDECODABLE',
          `The file is neither valid UTF-8 nor CP932 (Shift_JIS): undecodable bytes at line ${line}.`,
          line,
        );
      }
    }
    return s;
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
 * Decodes a byte stream into text, detecting the encoding as it goes, in constant memory.
 * Rejects non-text files (NOT_CSV), empty files (EMPTY_FILE) and bytes valid in no accepted encoding (UNDECODABLE).
 */
export async function* decodeText(
  source: AsyncIterable<Uint8Array | string>,
  info: DecodeInfo = {},
): AsyncGenerator<string> {
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
  let decoder: TextDecoderLike;
  let pending: Buffer[] = [head];

  if (startsWith(head, [0xff, 0xfe])) {
    info.encoding = 'utf-16le';
    decoder = iconvDecoder('utf-16le', linesBefore, false);
  } else if (startsWith(head, [0xfe, 0xff])) {
    info.encoding = 'utf-16be';
    decoder = iconvDecoder('utf-16be', linesBefore, false);
  } else {
    if (looksBinary(head)) {
      throw new FileRejectedError('NOT_CSV', 'This is not a CSV file: it contains binary data.');
    }
    if (startsWith(head, [0xef, 0xbb, 0xbf])) {
      info.encoding = 'utf-8-bom';
      pending = [head.subarray(3)];
      decoder = utf8Decoder(linesBefore);
    } else {
      // Undecided: ASCII is the same in both encodings; choose at the first non-ASCII byte.
      let buffered: Buffer = head;
      let firstHigh = buffered.findIndex((b) => b >= 0x80);
      while (firstHigh === -1 && !done) {
        // Emit the ASCII we already know is safe, keep reading.
        const text = buffered.toString('latin1');
        newlines += countNewlinesInString(text);
        yield text;
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
      const isUtf8 =
        firstHigh === -1 ||
        firstInvalidUtf8(window.subarray(0, done ? window.length : Math.max(0, window.length - 4))) === -1;
      info.encoding = isUtf8 ? 'utf-8' : 'cp932';
      decoder = isUtf8 ? utf8Decoder(linesBefore) : iconvDecoder('cp932', linesBefore, true);
      pending = [buffered];
    }
  }

  for (const buf of pending) {
    const s = decoder.write(buf);
    newlines += countNewlinesInString(s);
    if (s) yield s;
  }
  pending = [];
  while (!done) {
    const r = await it.next();
    if (r.done) break;
    const s = decoder.write(r.value);
    newlines += countNewlinesInString(s);
    if (s) yield s;
  }
  const tail = decoder.end();
  if (tail) yield tail;
}
