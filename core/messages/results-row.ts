import iconv from 'iconv-lite';
import { parse } from 'csv-parse/sync';
import { csvTextLine } from '../source/write.ts';
import { LOCAL_HEADER_SIZE } from './zip.ts';
import { writeUint, writeUtf8 } from '../shared/bytes.ts';

/**
 * One row of `results.csv` (core/finalize/results-sheet.ts), written by whoever has the record in hand: the worker
 * that ran it (into its part, core/work/chunk-part.ts) or the finalize (records no part holds). Here once, so both
 * write the same bytes: the one CSV writer (core/source/write.ts) with the formula guard, in the sheet's encoding.
 */

/** The columns results.csv adds after the file's own. */
export const RESULT_COLUMNS = [
  'rowfleet_record',
  'rowfleet_line',
  'rowfleet_status',
  'rowfleet_code',
  'rowfleet_message',
  'rowfleet_output',
] as const;

/** A record's status column (the wire's RecordStatus, core/finalize/wire.ts). */
export type SheetStatus = 'succeeded' | 'failed' | 'rejected' | 'in_doubt' | 'cancelled' | 'stopped_early';

/** The split's record-level rejections (core/source/scan.ts): the record was never run. */
const REJECTED_CODES: ReadonlySet<string> = new Set(['COLUMN_COUNT', 'NUL_BYTE']);
const STATUS_OF_CODE: Readonly<Record<string, SheetStatus>> = {
  IN_DOUBT: 'in_doubt',
  CANCELLED: 'cancelled',
  STOPPED_EARLY: 'stopped_early',
};

/** A record's status from its errors.csv code (none: it succeeded). */
export function statusOf(code: string | undefined): SheetStatus {
  if (code === undefined) return 'succeeded';
  if (REJECTED_CODES.has(code)) return 'rejected';
  return Object.hasOwn(STATUS_OF_CODE, code) ? STATUS_OF_CODE[code]! : 'failed';
}

/** What results.csv's encoding is: the upload's when it was CP932, UTF-8 with a BOM otherwise (Excel reads both). */
export function resultsEncoding(job: { readonly encoding?: string }): 'cp932' | 'utf-8-bom' {
  return job.encoding === 'cp932' ? 'cp932' : 'utf-8-bom';
}

/** Sheet text as the sheet's bytes (the BOM is the file's, written once by the finalize). */
export function encodeSheetText(text: string, encoding: 'cp932' | 'utf-8-bom'): Buffer {
  return encoding === 'cp932' ? iconv.encode(text, 'cp932') : Buffer.from(text, 'utf8');
}

/** A rejected record's fields, from its raw text (as the one CSV writer wrote it), read leniently. */
export function rawFields(raw: string, delimiter: string): string[] {
  try {
    return (parse(raw, { delimiter, relax_column_count: true, relax_quotes: true }) as string[][])[0] ?? [];
  } catch {
    return [raw];
  }
}

/** What a record's row says besides its values. */
export interface SheetOutcome {
  readonly n: number;
  readonly line: number;
  /** Its latest failure (errors.csv's row); none: it succeeded. */
  readonly failure?: { readonly code: string; readonly message: string } | undefined;
  /** A record the split rejected: its text as read (shown in the message when it has more fields than columns). */
  readonly rejectedRaw?: string | undefined;
  /** What it produced ({@link shownOutputs}); '' for a failure. */
  readonly output: string;
}

/**
 * One record's row as CSV text (CRLF-ended): its own values in the file's `width` columns (a rejected record's
 * fields fill them, any beyond stay in its message), then {@link RESULT_COLUMNS}.
 */
export function sheetRowText(
  own: readonly string[],
  width: number,
  o: SheetOutcome,
  delimiter: string,
): string {
  const cells = own.length === width ? own : Array.from({ length: width }, (_, i) => own[i] ?? '');
  const extra = own.length > width ? ` The record as read: ${o.rejectedRaw ?? ''}` : '';
  const failure = o.failure;
  return csvTextLine(
    [
      ...cells,
      String(o.n),
      String(o.line),
      statusOf(failure?.code),
      failure?.code ?? '',
      failure ? `${failure.message}${extra}` : '',
      o.output,
    ],
    { delimiter, guard: true },
  );
}

/**
 * A succeeded record's columns after its own cells, as {@link sheetRowText} writes them when the output needs no
 * quoting and no guard (record and line numbers, the status, empty code and message, the output), with the row's
 * end: for the rows written without the CSV writer (core/work/sheet-rows.ts), so the layout is spelled here only.
 */
export function succeededTail(n: number, line: number, output: string, d: string): string {
  return `${n}${d}${line}${d}${statusOf(undefined)}${d}${d}${d}${output}\r\n`;
}

/** {@link succeededTail}'s status, as bytes. */
const SUCCEEDED = Buffer.from(statusOf(undefined), 'latin1');

/** Room {@link writeSucceededTail} takes beyond its output's UTF-8 bytes: the delimiters, the numbers, the status, CRLF. */
export const SUCCEEDED_TAIL_ROOM = 64;

/**
 * {@link succeededTail}, written as UTF-8 bytes at `b[at]` after a delimiter `d` (one ASCII byte): the same layout,
 * byte by byte, with no string per row (a worker writes a million). Room checked by the caller
 * ({@link SUCCEEDED_TAIL_ROOM} + 3 × the output's length); the bytes written.
 */
export function writeSucceededTail(
  b: Buffer,
  at: number,
  n: number,
  line: number,
  output: string,
  d: number,
): number {
  const start = at;
  b[at++] = d;
  at += writeUint(b, n, at);
  b[at++] = d;
  at += writeUint(b, line, at);
  b[at++] = d;
  for (let k = 0; k < SUCCEEDED.length; k++) b[at++] = SUCCEEDED[k]!;
  b[at++] = d;
  b[at++] = d;
  b[at++] = d;
  at += writeUtf8(b, output, at);
  b[at++] = 0x0d;
  b[at++] = 0x0a;
  return at - start;
}

/**
 * The rowfleet_output of a record whose `count` zip entries start at byte `o` of `entries` (local entries as
 * core/messages/zip.ts writes them): each entry's name, or, where a stored (not deflated) output says what the side
 * effect answered (a JSON object with a `messageId`, as the mail processor's), that answer; space-separated.
 * `next` is where the entries after them begin.
 */
export function shownOutputs(entries: Buffer, o: number, count: number): { shown: string; next: number } {
  let shown = '';
  for (let i = 0; i < count && o + LOCAL_HEADER_SIZE <= entries.length; i++) {
    const nameLen = entries.readUInt16LE(o + 26);
    const extraLen = entries.readUInt16LE(o + 28);
    const csize = entries.readUInt32LE(o + 18);
    const dataAt = o + LOCAL_HEADER_SIZE + nameLen + extraLen;
    const method = entries.readUInt16LE(o + 8);
    const name = entries.toString('utf8', o + LOCAL_HEADER_SIZE, o + LOCAL_HEADER_SIZE + nameLen);
    if (i > 0) shown += ' ';
    shown += (method === 0 && answerOf(entries.subarray(dataAt, dataAt + csize))) || name;
    o = dataAt + csize;
  }
  return { shown, next: o };
}

/**
 * A record's rowfleet_output told from its outputs as the processor gave them, without reading its zip entries back:
 * the names, when no output may say a side effect's answer ({@link answerOf}'s first checks fail on its bytes, so
 * the entry shows its name whether stored or deflated) and every name reads back as written (no surrogate: a
 * lone one would not).
 * Undefined: ask {@link shownOutputs} (the entries decide).
 */
export function shownNames(outputs: readonly { name: string; data: string | Buffer }[]): string | undefined {
  let shown = '';
  for (let i = 0; i < outputs.length; i++) {
    const { name, data } = outputs[i]!;
    if (mayAnswer(data) || SURROGATE.test(name)) return undefined;
    shown += i > 0 ? ` ${name}` : name;
  }
  return shown;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** What could spell a key's letter in JSON text: a `\uXXXX` escape. */
const UNICODE_ESCAPE = '\\u';

/** {@link answerOf}'s first checks on an output's bytes (as UTF-8 when text). */
function mayAnswer(data: string | Buffer): boolean {
  // A text's UTF-8 is at least as long as the text; `{`, `\` and `u` are one byte, and no other character's UTF-8
  // holds those bytes.
  if (data.length > 4096) return false;
  if (typeof data === 'string') return data.charCodeAt(0) === 0x7b && textMayAnswer(data);
  return data[0] === 0x7b && (data.indexOf('"messageId"') >= 0 || data.indexOf(UNICODE_ESCAPE) >= 0);
}

/**
 * Whether JSON text holds the key's text (`"messageId"`) or a `\u` escape, in one pass (two `includes` over a
 * million json rows of non-ASCII text cost several times as much): an escape's second character is skipped, so
 * an escaped backslash before a `u` is not taken for one, nor an escaped quote for a key's opening quote — no key
 * starts there.
 */
function textMayAnswer(text: string): boolean {
  const n = text.length;
  for (let i = 1; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      if (text.charCodeAt(i + 1) === 0x75) return true;
      i++;
    } else if (c === 0x22 && text.charCodeAt(i + 1) === 0x6d && text.startsWith('messageId"', i + 1))
      return true;
  }
  return false;
}

/** What a side effect answered, when an output says it: a small JSON object's `messageId`. */
function answerOf(data: Buffer): string | undefined {
  if (data.length > 4096 || data[0] !== 0x7b) return undefined;
  // Most outputs say no answer (a json row): without the key's text, and without a `\u` escape that could spell
  // it, there is none — decided without parsing a million of them. Only `\u` can: the key's letters have no
  // other escape, and its quotes cannot be escaped (`\"` — a json row of a value with quotes — never spells it).
  if (data.indexOf('"messageId"') < 0 && data.indexOf(UNICODE_ESCAPE) < 0) return undefined;
  try {
    const v = (JSON.parse(data.toString('utf8')) as { messageId?: unknown }).messageId;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Rows of text encoded at once: small, so a batch dies young (measured: 256 K chars cost ~30 MiB more peak RSS). */
export const SHEET_BATCH_CHARS = 32 * 1024;

/** Sheet rows gathered as encoded bytes, a batch of text at a time. */
export class SheetBytes {
  private text = '';
  private readonly parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly encoding: 'cp932' | 'utf-8-bom') {}

  add(rowText: string): void {
    this.text += rowText;
    if (this.text.length >= SHEET_BATCH_CHARS) this.flush();
  }

  private flush(): void {
    if (this.text.length === 0) return;
    const b = encodeSheetText(this.text, this.encoding);
    this.text = '';
    this.parts.push(b);
    this.size += b.length;
  }

  bytes(): Buffer {
    this.flush();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }
}
