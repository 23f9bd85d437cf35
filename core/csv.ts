import { Readable, pipeline } from 'node:stream';
import { parse, type CsvError, type InfoRecord, type Options } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { FileRejectedError, type RecordErrorCode } from './errors.ts';

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
  | { readonly kind: 'header'; readonly header: string[]; readonly line: number; readonly delimiter: string }
  | ({ readonly kind: 'record' } & CsvRecord)
  | ({ readonly kind: 'rejected' } & RejectedRecord);

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
  return stringify([fields], { delimiter, record_delimiter: '' }).replace(/\0/g, '\u2400');
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

function mapParseError(err: CsvError, line: number, maxRecordBytes: number): FileRejectedError {
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new FileRejectedError(
        'UNTERMINATED_QUOTE',
        `A quoted field opened at line ${line} is never closed.`,
        line,
      );
    case 'CSV_MAX_RECORD_SIZE':
      return new FileRejectedError(
        'RECORD_TOO_LARGE',
        `The record at line ${line} is larger than the limit of ${maxRecordBytes} characters.`,
        line,
      );
    case 'CSV_INVALID_CLOSING_QUOTE':
      return new FileRejectedError(
        'INVALID_QUOTE',
        `A quoted field at line ${line} is followed by other characters before the next delimiter.`,
        line,
      );
    default:
      return new FileRejectedError(
        'INVALID_QUOTE',
        `The CSV cannot be parsed at line ${line}: ${err.message}`,
        line,
      );
  }
}

/**
 * Reads a decoded CSV text stream strictly: validates the header, numbers the non-empty records,
 * rejects records with a wrong column count or a NUL byte, and throws {@link FileRejectedError}
 * for problems that make the whole file unusable.
 */
export async function* readRecords(
  text: AsyncIterable<string>,
  opts: ReadOptions,
): AsyncGenerator<RecordEvent> {
  const it = text[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done || first.value.trim() === '') {
    // Only whitespace so far: look further before calling the file empty.
    let rest = first.done ? '' : first.value;
    while (rest.trim() === '') {
      const r = await it.next();
      if (r.done) throw new FileRejectedError('EMPTY_FILE', 'The file has no content (only blank lines).');
      rest = r.value;
    }
    yield* readFrom(rest, it, opts);
    return;
  }
  yield* readFrom(first.value, it, opts);
}

async function* readFrom(
  firstText: string,
  rest: AsyncIterator<string>,
  opts: ReadOptions,
): AsyncGenerator<RecordEvent> {
  const delimiter = detectDelimiter(firstText.replace(/^\s+/, ''));
  // Physical line numbers are tracked inside the parser (on_record runs in order), so they are
  // exact even for quoted newlines and mixed line endings, and current when a parse error occurs.
  let prevEnd = 0;
  let prevEmpty = 0;
  const parser = parse({
    delimiter,
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: opts.maxRecordBytes,
    on_record: ((fields: string[], ctx: InfoRecord) => {
      const line = prevEnd + 1 + (ctx.empty_lines - prevEmpty);
      prevEmpty = ctx.empty_lines;
      prevEnd = line + newlinesIn(fields);
      return { line, fields };
    }) as unknown as Options['on_record'],
  });
  async function* all(): AsyncGenerator<string> {
    yield firstText;
    for (;;) {
      const r = await rest.next();
      if (r.done) return;
      yield r.value;
    }
  }
  // pipeline() forwards a decoding error (e.g. UNDECODABLE) into the parser, where the loop below sees it.
  pipeline(Readable.from(all(), { objectMode: false }), parser, () => {});

  let header: string[] | undefined;
  let width = 0;
  let n = 0;
  try {
    for await (const { line, fields } of parser as AsyncIterable<{ line: number; fields: string[] }>) {
      if (!header) {
        validateHeader(fields, line);
        header = fields;
        width = fields.length;
        yield { kind: 'header', header, line, delimiter };
        continue;
      }
      let allEmpty = true;
      for (const f of fields) {
        if (f !== '') {
          allEmpty = false;
          break;
        }
      }
      if (allEmpty) continue;
      n++;
      if (fields.length !== width) {
        yield {
          kind: 'rejected',
          n,
          line,
          code: 'COLUMN_COUNT',
          message: `Expected ${width} fields as in the header, found ${fields.length}.`,
          raw: recordToRaw(fields, delimiter),
        };
        continue;
      }
      let nul = -1;
      for (let i = 0; i < fields.length; i++) {
        if (fields[i]!.indexOf('\0') !== -1) {
          nul = i;
          break;
        }
      }
      if (nul !== -1) {
        yield {
          kind: 'rejected',
          n,
          line,
          code: 'NUL_BYTE',
          message: `Field ${nul + 1} ("${header[nul] ?? ''}") contains a NUL byte.`,
          raw: recordToRaw(fields, delimiter),
        };
        continue;
      }
      yield { kind: 'record', n, line, fields };
    }
  } catch (err) {
    if (err instanceof FileRejectedError) throw err;
    const e = err as CsvError & { empty_lines?: number };
    if (typeof e.code === 'string' && e.code.startsWith('CSV_')) {
      const emptyNow =
        (parser as unknown as { info?: { empty_lines?: number } }).info?.empty_lines ?? prevEmpty;
      const line = prevEnd + 1 + Math.max(0, emptyNow - prevEmpty);
      throw mapParseError(e, line, opts.maxRecordBytes);
    }
    throw err;
  }
  if (!header) throw new FileRejectedError('EMPTY_FILE', 'The file has no content (only blank lines).');
  if (n === 0) {
    throw new FileRejectedError('NO_DATA_ROWS', `The file has a header (line 1) but no data records.`, 1);
  }
}
