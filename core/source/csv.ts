import { Parser, type CsvError } from 'csv-parse';
import { FileRejectedError, type RecordErrorCode } from '../shared/errors.ts';
import { csvRecord } from './write.ts';

/** A data record: `n` counts non-empty data records from 1; `line` is the physical line it starts on (header = 1). */
export interface CsvRecord {
  readonly n: number;
  readonly line: number;
  readonly fields: string[];
}

/** A record rejected on its own (the rest of the file goes on). */
export interface RejectedRecord {
  readonly n: number;
  readonly line: number;
  readonly code: RecordErrorCode;
  readonly message: string;
  readonly raw: string;
}

export interface ReadOptions {
  /** RECORD_TOO_LARGE above this many characters in one record. */
  readonly maxRecordBytes: number;
}

export type RecordEvent =
  | ({
      readonly kind: 'header';
      readonly header: string[];
      readonly line: number;
      readonly delimiter: string;
    } & RecordPosition)
  | ({ readonly kind: 'record' } & CsvRecord & RecordPosition)
  | ({ readonly kind: 'rejected' } & RejectedRecord & RecordPosition);

function newlinesIn(fields: string[]): number {
  let n = 0;
  for (const f of fields) {
    if (f.indexOf('\n') === -1 && f.indexOf('\r') === -1) continue;
    for (let i = 0; i < f.length; i++) {
      const c = f.charCodeAt(i);
      if (c === 10) n++;
      else if (c === 13 && f.charCodeAt(i + 1) !== 10) n++;
    }
  }
  return n;
}

/** Tab-separated when the first line has tabs and no commas (Excel's "Unicode text"); comma otherwise. */
export function detectDelimiter(firstText: string): string {
  const end = firstText.search(/[\r\n]/);
  const first = end === -1 ? firstText : firstText.slice(0, end);
  return first.includes('\t') && !first.includes(',') ? '\t' : ',';
}

/** The record as CSV text again, for errors.csv; NUL bytes are shown as ␀. */
export function recordToRaw(fields: string[], delimiter = ','): string {
  return csvRecord(fields, delimiter).replace(/\0/g, '\u2400');
}

export function validateHeader(header: string[], line: number): void {
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    const key = name.trim();
    if (key === '') {
      throw new FileRejectedError(
        'BLANK_HEADER',
        `Column ${i + 1} of the header (line ${line}) has no name.`,
        line,
      );
    }
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new FileRejectedError(
        'DUPLICATE_HEADER',
        `The header (line ${line}) names "${key}" twice: columns ${prev + 1} and ${i + 1}.`,
        line,
      );
    }
    seen.set(key, i);
  });
}

/**
 * The file-level CSV errors, worded once for the csv-parse reader and the boundary scanner. `line` is the
 * physical line the record in progress starts on.
 */
export const csvErrors = {
  unterminatedQuote: (line: number) =>
    new FileRejectedError(
      'UNTERMINATED_QUOTE',
      `A quoted field opened at line ${line} is never closed.`,
      line,
    ),
  recordTooLarge: (line: number, maxRecordBytes: number) =>
    new FileRejectedError(
      'RECORD_TOO_LARGE',
      `The record at line ${line} is larger than the limit of ${maxRecordBytes} characters.`,
      line,
    ),
  invalidClosingQuote: (line: number) =>
    new FileRejectedError(
      'INVALID_QUOTE',
      `A quoted field at line ${line} is followed by other characters before the next delimiter.`,
      line,
    ),
  /** Any other parse error (a quote inside an unquoted field), with csv-parse's own description. */
  unparsable: (line: number, detail: string) =>
    new FileRejectedError('INVALID_QUOTE', `The CSV cannot be parsed at line ${line}: ${detail}`, line),
  emptyFile: () => new FileRejectedError('EMPTY_FILE', 'The file has no content (only blank lines).'),
  noDataRows: (line: number) =>
    new FileRejectedError('NO_DATA_ROWS', `The file has a header (line ${line}) but no data records.`, line),
};

/** The messages of the record-level rejections. */
export const recordErrors = {
  columnCount: (width: number, found: number) => `Expected ${width} fields as in the header, found ${found}.`,
  nulByte: (field: number, header: readonly string[]) =>
    `Field ${field + 1} ("${header[field] ?? ''}") contains a NUL byte.`,
};

function mapParseError(err: CsvError, line: number, maxRecordBytes: number): FileRejectedError {
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return csvErrors.unterminatedQuote(line);
    case 'CSV_MAX_RECORD_SIZE':
      return csvErrors.recordTooLarge(line, maxRecordBytes);
    case 'CSV_INVALID_CLOSING_QUOTE':
      return csvErrors.invalidClosingQuote(line);
    default:
      return csvErrors.unparsable(line, err.message);
  }
}

/** Bytes of the first line the delimiter is told from. */
const DETECT_BYTES = 4096;

/** Where the CSV text starts in the bytes read so far: see {@link textStart}. */
export interface TextStart {
  /** Bytes of leading blank lines (and, at the end of the input, of a whitespace-only last line). */
  readonly skip: number;
  /** Leading blank lines in those bytes. */
  readonly lines: number;
  /** The delimiter, once the first line is known; undefined while more bytes are needed. */
  readonly delimiter?: string;
  /** Without a delimiter: how many of the bytes after `skip` are known spaces or tabs (pass it back as `blank`). */
  readonly blank: number;
}

/**
 * Leading blank (or whitespace-only) lines are skipped and counted, so the header is found and the delimiter
 * detected on its first line (within its first 4096 bytes). `final`: no more bytes follow. Without a
 * delimiter in the answer, the caller drops `skip` bytes and asks again with more bytes, passing `blank`
 * back (so a long run of spaces is looked at once); a file of nothing but blank lines never gets one:
 * EMPTY_FILE. The answer does not depend on how the bytes were chunked.
 */
export function textStart(buf: Uint8Array, final: boolean, blank = 0): TextStart {
  let i = 0;
  let lines = 0;
  let j = blank;
  for (;;) {
    while (j < buf.length && (buf[j] === 0x20 || buf[j] === 0x09)) j++;
    if (j === buf.length) return final ? { skip: j, lines, blank: 0 } : { skip: i, lines, blank: j - i };
    if (buf[j] === 0x0a) {
      i = j + 1;
      lines++;
    } else if (buf[j] === 0x0d) {
      if (j + 1 === buf.length && !final) return { skip: i, lines, blank: 0 };
      i = buf[j + 1] === 0x0a ? j + 2 : j + 1;
      lines++;
    } else break;
    j = i;
  }
  const first = buf.subarray(i, i + DETECT_BYTES);
  if (!final && first.length < DETECT_BYTES && first.indexOf(0x0a) === -1 && first.indexOf(0x0d) === -1)
    return { skip: i, lines, blank: 0 };
  return { skip: i, lines, blank: 0, delimiter: detectDelimiter(Buffer.from(first).toString('utf8')) };
}

/** Position of a record in the UTF-8 byte stream the parser read. */
export interface RecordPosition {
  /** Byte offset just after the record (and its line ending). */
  readonly end: number;
  /** Physical line the record ends on. */
  readonly endLine: number;
}

/** The parser options every reader of a Rowfleet CSV uses (the split and the workers parse alike). */
function parserFor(delimiter: string, maxRecordBytes: number): ParserCore {
  return new Parser({
    // An explicit ',' takes csv-parse off its fast path (about 1.6× slower); ',' is its default.
    ...(delimiter === ',' ? {} : { delimiter }),
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    max_record_size: maxRecordBytes,
  }) as unknown as ParserCore;
}

/** What a reader knows of its file's header once it has read it. */
export interface HeaderState {
  header: string[] | undefined;
  headerLine: number;
  width: number;
  readonly delimiter: string;
}

/** A reader's first non-empty record is its header: validated, kept, and announced as the header event. */
export function adoptHeader(
  state: HeaderState,
  fields: string[],
  at: { readonly line: number } & RecordPosition,
  out: { push(event: Extract<RecordEvent, { kind: 'header' }>): unknown },
): void {
  validateHeader(fields, at.line);
  state.header = fields;
  state.headerLine = at.line;
  state.width = fields.length;
  out.push({
    kind: 'header',
    header: fields,
    line: at.line,
    delimiter: state.delimiter,
    end: at.end,
    endLine: at.endLine,
  });
}

/**
 * The record rules, once: blank lines and all-empty records are skipped (but counted as lines),
 * every other record gets the next number; a wrong column count or a NUL byte rejects the record.
 */
class RecordRules {
  n: number;
  prevEnd: number;
  header: string[] | undefined;
  headerLine = 0;
  width = 0;

  constructor(
    readonly delimiter: string,
    first: { n: number; line: number },
    header?: string[],
  ) {
    this.n = first.n - 1;
    this.prevEnd = first.line - 1;
    if (header) {
      this.header = header;
      this.width = header.length;
    }
  }

  /** Classifies one parsed record; `end` is the byte offset after it. */
  take(fields: string[], end: number, out: RecordEvent[]): void {
    const line = this.prevEnd + 1;
    const endLine = line + newlinesIn(fields);
    this.prevEnd = endLine;
    let allEmpty = true;
    for (let i = 0; i < fields.length; i++) {
      if (fields[i] !== '') {
        allEmpty = false;
        break;
      }
    }
    if (allEmpty) return;
    const header = this.header;
    if (!header) return adoptHeader(this, fields, { line, end, endLine }, out);
    const n = ++this.n;
    if (fields.length !== this.width) {
      out.push({
        kind: 'rejected',
        n,
        line,
        end,
        endLine,
        code: 'COLUMN_COUNT',
        message: recordErrors.columnCount(this.width, fields.length),
        raw: recordToRaw(fields, this.delimiter),
      });
      return;
    }
    for (let i = 0; i < fields.length; i++) {
      if (fields[i]!.indexOf('\0') !== -1) {
        out.push({
          kind: 'rejected',
          n,
          line,
          end,
          endLine,
          code: 'NUL_BYTE',
          message: recordErrors.nulByte(i, header),
          raw: recordToRaw(fields, this.delimiter),
        });
        return;
      }
    }
    out.push({ kind: 'record', n, line, end, endLine, fields });
  }
}

/**
 * Reads a CSV (as UTF-8 bytes, see decodeToUtf8) strictly: validates the header, numbers the non-empty
 * records, rejects records with a wrong column count or a NUL byte, and throws {@link FileRejectedError}
 * for problems that make the whole file unusable. Yields the events of each input chunk together (one
 * await per chunk, not per record). Every event carries its byte offset, so a chunk of records can be
 * addressed as a byte range of the file. The split validates with the faster boundary scanner
 * (`scan.ts`), which gives the same events without the fields; this reader is its reference.
 */
export async function* readRecordBatches(
  input: AsyncIterable<Buffer | string>,
  opts: ReadOptions,
): AsyncGenerator<RecordEvent[]> {
  let parser: ParserCore | undefined;
  let rules: RecordRules | undefined;
  let batch: RecordEvent[] = [];
  let leading = 0;
  let leadingLines = 0;
  /** Bytes read before the text start is known (leading blank lines dropped), `blank` of them spaces or tabs. */
  let pending: Buffer | undefined;
  let blank = 0;

  const feed = (chunk: Buffer | undefined, end: boolean) => {
    const p = parser!;
    const r = rules!;
    const err = p.api.parse(
      chunk,
      end,
      (fields) => r.take(fields, leading + p.api.info.bytes, batch),
      () => {},
    );
    if (err !== undefined) throw mapParseError(err as CsvError, r.prevEnd + 1, opts.maxRecordBytes);
  };
  const start = (buf: Buffer, final: boolean): Buffer | undefined => {
    const s = textStart(buf, final, blank);
    blank = s.blank;
    leading += s.skip;
    leadingLines += s.lines;
    const rest = buf.subarray(s.skip);
    if (s.delimiter === undefined) {
      pending = rest;
      return undefined;
    }
    pending = undefined;
    parser = parserFor(s.delimiter, opts.maxRecordBytes);
    rules = new RecordRules(s.delimiter, { n: 1, line: 1 + leadingLines });
    return rest;
  };

  for await (const piece of input) {
    let chunk: Buffer | undefined = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    if (!parser) {
      chunk = start(pending?.length ? Buffer.concat([pending, chunk]) : chunk, false);
      if (!chunk) continue;
    }
    feed(chunk, false);
    if (batch.length > 0) {
      yield batch;
      batch = [];
    }
  }
  if (!parser) {
    const rest = start(pending ?? Buffer.alloc(0), true);
    if (rest) feed(rest, false);
  }
  if (!parser || !rules) throw csvErrors.emptyFile();
  feed(undefined, true);
  if (batch.length > 0) yield batch;
  if (!rules.header) throw csvErrors.emptyFile();
  if (rules.n === 0) throw csvErrors.noDataRows(rules.headerLine);
}

/** Where a range of a file starts, for the range readers. */
export interface RangeStart {
  readonly header: string[];
  readonly delimiter: string;
  /** Number of the first record in the range. */
  readonly n: number;
  /** Physical line the range starts on. */
  readonly line: number;
  readonly maxRecordBytes: number;
}

/**
 * Reads a byte range of a CSV that the split already validated, with the same rules and numbering, through
 * csv-parse: the reference of the workers' reader (`readRange` in scan.ts).
 */
export function readRangeCsvParse(bytes: Buffer, start: RangeStart): RecordEvent[] {
  const parser = parserFor(start.delimiter, start.maxRecordBytes);
  const rules = new RecordRules(start.delimiter, start, start.header);
  const out: RecordEvent[] = [];
  const push = (fields: string[]) => rules.take(fields, parser.api.info.bytes, out);
  for (const end of [false, true]) {
    const err = parser.api.parse(end ? undefined : bytes, end, push, () => {});
    if (err !== undefined) throw mapParseError(err as CsvError, rules.prevEnd + 1, start.maxRecordBytes);
  }
  return out;
}

/** The csv-parse engine behind its stream wrapper, fed synchronously chunk by chunk. */
interface ParserCore {
  api: {
    parse(
      buf: Buffer | undefined,
      end: boolean,
      push: (record: string[]) => void,
      close: () => void,
    ): Error | undefined;
    info: { bytes: number };
  };
}

/** {@link readRecordBatches}, one event at a time. */
export async function* readRecords(
  input: AsyncIterable<Buffer | string>,
  opts: ReadOptions,
): AsyncGenerator<RecordEvent> {
  for await (const batch of readRecordBatches(input, opts)) yield* batch;
}
