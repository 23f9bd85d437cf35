import {
  adoptHeader,
  csvErrors,
  recordErrors,
  recordToRaw,
  textStart,
  type RangeStart,
  type ReadOptions,
  type RecordEvent,
  type RecordPosition,
} from './csv.ts';

/**
 * What the split needs of a record: where it is and whether it is accepted. The same events as
 * {@link readRecordBatches} (the csv-parse reader, kept as the reference), but accepted records come
 * without their fields unless asked for (`withFields`).
 */
export type BoundaryEvent =
  | Extract<RecordEvent, { kind: 'header' }>
  | Extract<RecordEvent, { kind: 'rejected' }>
  | ({
      readonly kind: 'record';
      readonly n: number;
      readonly line: number;
      readonly fields?: string[];
    } & RecordPosition);

export interface ScanOptions extends ReadOptions {
  /** Accepted records with their fields too (the workers' reads); the split needs none. */
  readonly withFields?: boolean;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/** States of the quote-aware machines (the scanner's OUTSIDE is the decoder's FIELD and UNQUOTED). */
const FIELD = 0; // at the start of a field
const UNQUOTED = 1; // in an unquoted field (or after a NUL that followed a closing quote)
const QUOTED = 2; // in a quoted field
const QUOTE_SEEN = 3; // after a quote in a quoted field: the next byte tells an escaped quote from a closing one
const CR_SEEN = 4; // after a CR that ends a record: an LF next belongs to it
const OUTSIDE = 5; // outside quotes

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Decodes one record's bytes to fields exactly as csv-parse does, and tells whether csv-parse's
 * max_record_size check fails on the way. That check runs before each byte is added to a field: the
 * UTF-16 length of the record's finished fields plus the bytes of the field in progress must not exceed
 * the limit. Fed only the bytes of a record that the scanner found well-formed up to where it stops (no
 * record delimiter, no byte at or after a quote error). Used for the header, rejected records and
 * records too long for the quick size bound: rare, so plain and exact rather than fast.
 */
class RecordDecoder {
  readonly fields: string[] = [];
  /** The limit was passed before some byte was added. */
  over = false;
  private field = Buffer.allocUnsafe(64);
  private length = 0;
  private state = FIELD;
  /** csv-parse's record_length: UTF-16 code units of the finished fields. */
  private size = 0;

  constructor(
    private readonly delimiter: number,
    private readonly max: number,
  ) {}

  feed(src: Uint8Array, from: number, to: number): void {
    const d = this.delimiter;
    for (let i = from; i < to; i++) {
      const c = src[i]!;
      switch (this.state) {
        case FIELD:
          if (c === QUOTE) this.state = QUOTED;
          else if (c === d) this.done();
          else {
            this.add(c);
            this.state = UNQUOTED;
          }
          break;
        case UNQUOTED:
          if (c === d) {
            this.done();
            this.state = FIELD;
          } else this.add(c);
          break;
        case QUOTED:
          if (c === QUOTE) this.state = QUOTE_SEEN;
          else this.add(c);
          break;
        default:
          // QUOTE_SEEN: an escaped quote, the delimiter, or a NUL (csv-parse closes the quote before a NUL).
          if (c === QUOTE) {
            this.add(c);
            this.state = QUOTED;
          } else if (c === d) {
            this.done();
            this.state = FIELD;
          } else {
            this.add(c);
            this.state = UNQUOTED;
          }
      }
    }
  }

  /** The record's fields, once it has ended. */
  finish(): string[] {
    this.done();
    return this.fields;
  }

  /** The bytes of the field in progress. */
  current(): Buffer {
    return this.field.subarray(0, this.length);
  }

  private add(c: number): void {
    if (this.max !== 0 && this.size + this.length > this.max) this.over = true;
    if (this.length === this.field.length) {
      const bigger = Buffer.allocUnsafe(this.field.length * 2);
      this.field.copy(bigger);
      this.field = bigger;
    }
    this.field[this.length++] = c;
  }

  private done(): void {
    const s = this.field.toString('utf8', 0, this.length);
    this.fields.push(s);
    this.size += s.length;
    this.length = 0;
  }
}

/**
 * The split's validating boundary scanner: a quote-aware state machine over UTF-8 bytes that finds record
 * boundaries (byte offsets), physical lines, field counts, quote errors, NUL bytes and record sizes
 * without building a string per field. It applies the record rules of {@link readRecordBatches} —
 * leading blank lines, the delimiter from the header line, blank and all-empty records skipped, wrong
 * column counts and NUL bytes rejected on their own, every file-level error with the line it names — and
 * gives the same events (accepted records without fields). The header and rejected records are decoded to
 * fields; so is a record longer (in bytes) than the size limit, to apply csv-parse's own size measure.
 *
 * Feed chunks with {@link push}; {@link end} after the last one; {@link finish} for the whole-file checks.
 */
export class BoundaryScanner {
  private readonly max: number;
  /** The record size limit in bytes: the quick bound (a record's bytes bound csv-parse's measure). */
  private readonly bound: number;
  /**
   * Bytes read while the start of the text is still open: a view of the caller's last chunk, or of
   * `pendingStore` (from offset `pendingAt`) once they span more than one chunk.
   */
  private pending: Buffer | undefined;
  private pendingStore: Buffer | undefined;
  /**
   * Where `pending` starts in `pendingStore`, or -1 when it is a view of a caller's chunk. Kept here, never
   * inferred from the buffers' `ArrayBuffer`: the runtime's pool puts unrelated buffers in one (Node 24's
   * 64 KiB pool holds both the store and small input chunks).
   */
  private pendingAt = -1;
  /** How many of the pending bytes are known spaces or tabs. */
  private blank = 0;
  private started = false;
  private leadLines = 0;
  private firstLine = 1;
  delimiter = ',';
  private delim = 0x2c;

  /** Offset of the next byte to scan in the input. */
  private base = 0;
  private state = OUTSIDE;
  // The record in progress.
  private recStart = 0;
  /** Delimiters so far (fields before the one in progress). */
  private fields = 0;
  /** Offset of the field in progress: a quote opens a field only there. */
  private fieldStart = 0;
  /** Whether a quoted field of it held a byte (unquoted bytes are told from its length). */
  private content = false;
  /** Its quoted fields without content (""). */
  private emptyQuoted = 0;
  /** Offset of the last opening quote. */
  private quoteAt = -1;
  private newlines = 0;
  private hasNul = false;
  private crAt = 0;
  /** Its bytes in earlier chunks (while no decoder follows it); `carried` when there are any. */
  private readonly pieces: Buffer[] = [];
  private carried = false;
  /** The decoder following it, and how far it has been fed (offset in the input). */
  private decoder: RecordDecoder | undefined;
  private decodedTo = 0;
  // Over the whole input.
  private lastQuotedCr = -2;
  /** CRLF pairs inside quoted fields (csv-parse counts them as two lines in its own messages). */
  private quotedCrlf = 0;
  private n = 0;
  private prevEnd = 0;
  // HeaderState (csv.ts adoptHeader): set once, from the file's first non-empty record.
  header: string[] | undefined;
  headerLine = 0;
  width = 0;

  private readonly withFields: boolean;

  /** `range`: the input is a range of a validated file that starts with the record it names. */
  constructor(opts: ScanOptions, range?: RangeStart) {
    this.max = opts.maxRecordBytes;
    this.bound = opts.maxRecordBytes === 0 ? Infinity : opts.maxRecordBytes;
    this.withFields = opts.withFields ?? false;
    if (range) {
      this.started = true;
      this.delimiter = range.delimiter;
      this.delim = range.delimiter.charCodeAt(0);
      this.header = range.header;
      this.width = range.header.length;
      this.n = range.n - 1;
      this.prevEnd = range.line - 1;
      this.firstLine = range.line;
    }
  }

  /** Scans the next chunk of input, adding the events of the records it completes to `out`. */
  push(chunk: Buffer, out: BoundaryEvent[]): void {
    if (!this.started) {
      const rest = this.pending?.length
        ? this.start(this.morePending(chunk), false, this.pendingAt)
        : this.start(chunk, false, -1);
      if (!rest) return;
      chunk = rest;
    }
    this.scan(chunk, false, out);
  }

  /**
   * The undecided bytes and `chunk`, in the scanner's own store, which grows by doubling (a long blank prefix
   * costs no more); `pendingAt` then says where they start in it.
   */
  private morePending(chunk: Buffer): Buffer {
    const p = this.pending!;
    const length = p.length + chunk.length;
    const store = this.pendingStore;
    const from = this.pendingAt;
    if (store && from >= 0 && from + length <= store.length) {
      chunk.copy(store, from + p.length);
      return store.subarray(from, from + length);
    }
    const bigger = Buffer.allocUnsafe(Math.max(2 * length, 8192));
    p.copy(bigger);
    chunk.copy(bigger, p.length);
    this.pendingStore = bigger;
    this.pendingAt = 0;
    return bigger.subarray(0, length);
  }

  /** Ends the input: the last record's events; throws a file-level error found at the end. */
  end(out: BoundaryEvent[]): void {
    if (!this.started) {
      const rest = this.start(this.pending ?? Buffer.alloc(0), true, -1);
      if (!rest) throw csvErrors.emptyFile();
      this.scan(rest, true, out);
    } else this.scan(Buffer.alloc(0), true, out);
  }

  /** The whole-file checks, after {@link end}: a header and at least one data record. */
  finish(): void {
    if (!this.header) throw csvErrors.emptyFile();
    if (this.n === 0) throw csvErrors.noDataRows(this.headerLine);
  }

  /** `at`: where `buf` starts in `pendingStore`, or -1 when it is not a view of it. */
  private start(buf: Buffer, final: boolean, at: number): Buffer | undefined {
    const s = textStart(buf, final, this.blank);
    this.blank = s.blank;
    this.base += s.skip;
    this.leadLines += s.lines;
    if (s.delimiter === undefined) {
      this.pending = buf.subarray(s.skip);
      this.pendingAt = at < 0 ? -1 : at + s.skip;
      return undefined;
    }
    this.pending = this.pendingStore = undefined;
    this.pendingAt = -1;
    this.started = true;
    this.delimiter = s.delimiter;
    this.delim = s.delimiter.charCodeAt(0);
    this.recStart = this.fieldStart = this.base;
    this.prevEnd = this.leadLines;
    this.firstLine = this.leadLines + 1;
    return buf.subarray(s.skip);
  }

  private scan(buf: Buffer, final: boolean, out: BoundaryEvent[]): void {
    const len = buf.length;
    const base = this.base;
    const d = this.delim;
    // Every byte above `hi` is an ordinary field byte (all of UTF-8's multi-byte sequences included).
    const hi = d > QUOTE ? d : QUOTE;
    let state = this.state;
    let fields = this.fields;
    let fieldStart = this.fieldStart;
    let content = this.content;
    let emptyQuoted = this.emptyQuoted;
    let newlines = this.newlines;
    let crAt = this.crAt;
    let w1 = this.width - 1;
    let nul = buf.indexOf(0);
    let i = 0;
    let c: number;
    while (i < len) {
      // A record ends: its content up to `ce`, its line ending up to `e` (offsets in `buf`).
      let ce: number;
      let e: number;
      if (state === OUTSIDE) {
        // The hot loop: keep its canonical shape (V8 compiles `for (; i < len; i++)` best).
        c = 0;
        for (; i < len; i++) {
          c = buf[i]!;
          if (c > hi) continue;
          if (c === d) {
            fields++;
            fieldStart = base + i + 1;
          } else if (c === LF || c === CR || c === QUOTE) break;
        }
        if (i === len) continue;
        if (c === CR) {
          crAt = base + i;
          state = CR_SEEN;
          i++;
          continue;
        }
        if (c === QUOTE) {
          if (base + i !== fieldStart) {
            this.newlines = newlines;
            throw this.openingQuoteError(buf, i, fields);
          }
          this.quoteAt = base + i;
          state = QUOTED;
          i++;
          continue;
        }
        ce = i;
        e = i + 1;
      } else if (state === QUOTED) {
        const from = i;
        for (; i < len; i++) {
          c = buf[i]!;
          if (c > QUOTE) continue;
          if (c === QUOTE) break;
          if (c === LF) {
            if (this.lastQuotedCr === base + i - 1) this.quotedCrlf++;
            else newlines++;
          } else if (c === CR) {
            newlines++;
            this.lastQuotedCr = base + i;
          }
        }
        if (i > from) content = true;
        if (i === len) continue;
        state = QUOTE_SEEN;
        i++;
        continue;
      } else if (state === QUOTE_SEEN) {
        c = buf[i]!;
        if (c === QUOTE) {
          // An escaped quote.
          content = true;
          state = QUOTED;
          i++;
          continue;
        }
        if (c !== d && c !== LF && c !== CR && c !== 0)
          throw this.failAt(buf, base + i, csvErrors.invalidClosingQuote(this.prevEnd + 1));
        // The quote closes its field (csv-parse also closes it before a NUL, which then joins the field).
        if (base + i - 2 === this.quoteAt) emptyQuoted++;
        state = OUTSIDE;
        if (c === 0) {
          content = true;
          i++;
        } else if (c === d) {
          fields++;
          fieldStart = base + ++i;
        } else if (c === CR) {
          crAt = base + i;
          state = CR_SEEN;
          i++;
        } else {
          ce = i;
          e = i + 1;
        }
        if (c !== LF) continue;
      } else {
        // CR_SEEN: the record ended at a CR; an LF next belongs to its line ending.
        ce = crAt - base;
        e = buf[i] === LF ? i + 1 : i;
      }

      const rawLength = base + ce! - this.recStart;
      let nulIn = this.hasNul;
      if (nul !== -1 && nul < e!) {
        nulIn = true;
        nul = buf.indexOf(0, e!);
      }
      if (!content && rawLength <= fields + 2 * emptyQuoted) this.prevEnd += 1 + newlines;
      else if (fields === w1 && !nulIn && rawLength <= this.bound) {
        const line = this.prevEnd + 1;
        const endLine = line + newlines;
        this.prevEnd = endLine;
        if (this.withFields)
          out.push({
            kind: 'record',
            n: ++this.n,
            line,
            end: base + e!,
            endLine,
            fields: this.fieldsOf(buf, ce!),
          });
        else out.push({ kind: 'record', n: ++this.n, line, end: base + e!, endLine });
      } else {
        this.decodedRecord(buf, base + ce!, base + e!, fields, newlines, nulIn, out);
        w1 = this.width - 1;
      }
      this.recStart = fieldStart = base + e!;
      if (this.carried) {
        this.pieces.length = 0;
        this.carried = false;
      }
      this.decoder = undefined;
      this.hasNul = false;
      state = OUTSIDE;
      fields = 0;
      content = false;
      emptyQuoted = 0;
      newlines = 0;
      i = e!;
    }

    this.state = state;
    this.fields = fields;
    this.fieldStart = fieldStart;
    this.content = content;
    this.emptyQuoted = emptyQuoted;
    this.newlines = newlines;
    this.crAt = crAt;
    const end = base + len;
    if (!final) {
      // A record goes on in the next chunk: keep what its end may need.
      if (this.recStart < end) {
        if (nul !== -1) this.hasNul = true;
        const to = state === CR_SEEN ? crAt : end;
        if (!this.decoder) {
          this.pieces.push(buf.subarray(Math.max(0, this.recStart - base)));
          this.carried = true;
        }
        // Longer than the limit in bytes: from here on the decoder follows it, and stops it where
        // csv-parse would (so a never-ending field is never held whole).
        if ((this.decoder || to - this.recStart > this.bound) && this.decode(buf, to).over)
          throw csvErrors.recordTooLarge(this.prevEnd + 1, this.max);
      }
      this.base = end;
      return;
    }
    if (state === QUOTED) throw this.failAt(buf, end, csvErrors.unterminatedQuote(this.prevEnd + 1));
    // csv-parse emits a last record without a line ending unless nothing of it was read.
    if (end === this.recStart) return;
    if (state === QUOTE_SEEN && end - 1 === this.quoteAt + 1) emptyQuoted++;
    const ce = state === CR_SEEN ? crAt : end;
    const nulIn = nul !== -1 || this.hasNul;
    if (!content && ce - this.recStart <= fields + 2 * emptyQuoted) this.prevEnd += 1 + newlines;
    else this.decodedRecord(buf, ce, end, fields, newlines, nulIn, out);
    this.base = end;
  }

  /** Feeds the record in progress to its decoder up to offset `to` (in `buf` or before it). */
  private decode(buf: Buffer, to: number): RecordDecoder {
    let dec = this.decoder;
    if (!dec) {
      dec = this.decoder = new RecordDecoder(this.delim, this.max);
      let at = this.recStart;
      for (const p of this.pieces) {
        const k = Math.min(p.length, to - at);
        if (k > 0) dec.feed(p, 0, k);
        at += p.length;
      }
      this.pieces.length = 0;
      this.carried = false;
      this.decodedTo = Math.max(this.recStart, Math.min(at, to));
    }
    if (to > this.decodedTo) {
      dec.feed(buf, this.decodedTo - this.base, to - this.base);
      this.decodedTo = to;
    }
    return dec;
  }

  /** A record that is the header, rejected, or too long for the quick size bound: decoded to fields. */
  private decodedRecord(
    buf: Buffer,
    contentEnd: number,
    end: number,
    fieldCount: number,
    newlines: number,
    nulIn: boolean,
    out: BoundaryEvent[],
  ): void {
    const line = this.prevEnd + 1;
    const endLine = line + newlines;
    const dec = this.decode(buf, contentEnd);
    if (dec.over) throw csvErrors.recordTooLarge(line, this.max);
    const fields = dec.finish();
    this.prevEnd = endLine;
    const header = this.header;
    if (!header) return adoptHeader(this, fields, { line, end, endLine }, out);
    const n = ++this.n;
    const reject = (code: 'COLUMN_COUNT' | 'NUL_BYTE', message: string) =>
      out.push({
        kind: 'rejected',
        n,
        line,
        end,
        endLine,
        code,
        message,
        raw: recordToRaw(fields, this.delimiter),
      });
    if (fieldCount + 1 !== this.width)
      reject('COLUMN_COUNT', recordErrors.columnCount(this.width, fields.length));
    else if (nulIn || this.hasNul) {
      const at = fields.findIndex((f) => f.includes('\0'));
      reject('NUL_BYTE', recordErrors.nulByte(at, header));
    } else out.push({ kind: 'record', n, line, end, endLine, ...(this.withFields ? { fields } : {}) });
  }

  /**
   * The fields of an accepted record that ends at `ce` in `buf`. Without a quote, its text split at the
   * delimiter: in valid UTF-8 (what the split passes on) a delimiter byte is never part of a character.
   */
  private fieldsOf(buf: Buffer, ce: number): string[] {
    if (this.carried || this.quoteAt >= this.recStart) return this.decode(buf, this.base + ce).finish();
    return buf.toString('utf8', this.recStart - this.base, ce).split(this.delimiter);
  }

  /** `err`, found at offset `at`, unless the record passed the size limit before it (csv-parse stops there). */
  private failAt(buf: Buffer, at: number, err: Error): Error {
    if (at - this.recStart > this.bound && this.decode(buf, at).over)
      return csvErrors.recordTooLarge(this.prevEnd + 1, this.max);
    return err;
  }

  /** A quote inside an unquoted field (at `i` in `buf`), described as csv-parse does. */
  private openingQuoteError(buf: Buffer, i: number, fields: number): Error {
    const at = this.base + i;
    const line = this.prevEnd + 1;
    const dec = this.decode(buf, at);
    if (dec.over) return csvErrors.recordTooLarge(line, this.max);
    const field = dec.current();
    // csv-parse's line count: from its first line, with a CRLF inside quotes counted as two.
    const csvLine = line + this.newlines - this.firstLine + 1 + this.quotedCrlf;
    const detail =
      `Invalid Opening Quote: a quote is found on field ${fields} at line ${csvLine}, ` +
      `value is ${JSON.stringify(field.toString('utf8'))}` +
      (field.equals(UTF8_BOM) ? ' (utf8 bom)' : '');
    return csvErrors.unparsable(line, detail);
  }
}

/**
 * Reads a byte range of a CSV that the split already validated, with the same rules and numbering: the
 * workers' read, the same events as csv-parse gives ({@link readRangeCsvParse}, its reference) at a few
 * times its speed.
 */
export function readRange(bytes: Buffer, start: RangeStart): RecordEvent[] {
  const scanner = new BoundaryScanner({ maxRecordBytes: start.maxRecordBytes, withFields: true }, start);
  const out: BoundaryEvent[] = [];
  scanner.push(bytes, out);
  scanner.end(out);
  // With `withFields`, every accepted record carries its fields.
  return out as RecordEvent[];
}

/**
 * Scans a CSV (as UTF-8 bytes, see decodeToUtf8) with {@link BoundaryScanner}: the events of each input
 * chunk together, as {@link readRecordBatches} yields them, and the same file-level errors.
 */
export async function* scanRecordBatches(
  input: AsyncIterable<Buffer | string>,
  opts: ScanOptions,
): AsyncGenerator<BoundaryEvent[]> {
  const scanner = new BoundaryScanner(opts);
  yield* scanThrough(scanner, input);
  scanner.finish();
}

/** Feeds `input` through `scanner`, yielding each piece's events, then those of the end. */
async function* scanThrough(
  scanner: BoundaryScanner,
  input: AsyncIterable<Buffer | string>,
): AsyncGenerator<BoundaryEvent[]> {
  for await (const piece of input) {
    const out: BoundaryEvent[] = [];
    scanner.push(typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece, out);
    if (out.length > 0) yield out;
  }
  const out: BoundaryEvent[] = [];
  scanner.end(out);
  if (out.length > 0) yield out;
}

/**
 * Scans a stream of a file that starts with the record `start` names, header given (no header row): as
 * {@link readRange}, but streamed (a resubmitted file's own source, read whole by the finalize).
 */
export async function* scanRangeBatches(
  input: AsyncIterable<Buffer | string>,
  start: RangeStart,
): AsyncGenerator<BoundaryEvent[]> {
  yield* scanThrough(
    new BoundaryScanner({ maxRecordBytes: start.maxRecordBytes, withFields: true }, start),
    input,
  );
}

/** {@link scanRecordBatches}, one event at a time. */
export async function* scanRecords(
  input: AsyncIterable<Buffer | string>,
  opts: ScanOptions,
): AsyncGenerator<BoundaryEvent> {
  for await (const batch of scanRecordBatches(input, opts)) yield* batch;
}
