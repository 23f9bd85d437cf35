/** A chunk's rows of results.csv, built as its records come out in order (the finalize copies them as they are). */
import type { ChunkMessage } from '../messages/chunk.ts';
import {
  rawFields,
  resultsEncoding,
  SheetBytes,
  sheetRowText,
  succeededTail,
  SUCCEEDED_TAIL_ROOM,
  writeSucceededTail,
  type SheetOutcome,
} from '../messages/results-row.ts';
import type { RejectedRecord } from '../source/csv.ts';
import { plainCell, plainLine } from '../source/write.ts';
import { withRoom } from '../shared/bytes.ts';
import type { Job } from '../jobs/store.ts';
import type { SourceLines } from './chunk-records.ts';

/**
 * The rows of every numbered record of a chunk's range, in record order: each record run (its values, outcome and
 * outputs) and each record the split rejected (its fields as read, its rejection), as core/messages/results-row.ts
 * writes them — the same bytes the finalize wrote when it read the whole source again. In a UTF-8 sheet, a
 * succeeded record whose cells need no quoting and no formula guard has its text copied from the range's bytes
 * (`lines`, chunkRecords'), as the writer would have written it.
 */
export class SheetRows {
  /** A CP932 sheet's rows, encoded a batch of text at a time. */
  private readonly text: SheetBytes | undefined;
  /** A UTF-8 sheet's rows, written in place. */
  private buf: Buffer = Buffer.allocUnsafe(0);
  private used = 0;
  private readonly width: number;
  private readonly delimiter: string;
  /** The delimiter's byte, when a plain record's bytes can be copied (-1: never). */
  private readonly d: number;
  /** The next of `rejected` not written yet. */
  private r = 0;

  constructor(
    job: Pick<Job, 'encoding' | 'header' | 'delimiter'>,
    private readonly rejected: readonly RejectedRecord[],
    /** Where the records are in the range's bytes: given, plain records are copied from there. */
    private readonly lines?: SourceLines,
    /** Bytes to make room for at once (a UTF-8 sheet's): each growth copies the rows so far. */
    room = 0,
  ) {
    const encoding = resultsEncoding(job);
    this.text = encoding === 'cp932' ? new SheetBytes(encoding) : undefined;
    if (!this.text && room > 0) this.buf = Buffer.allocUnsafe(room);
    this.width = job.header?.length ?? 0;
    this.delimiter = job.delimiter ?? ',';
    const d = this.delimiter.charCodeAt(0);
    this.d = this.delimiter.length === 1 && d < 0x80 && !this.text && lines ? d : -1;
  }

  /**
   * Record `o.n`'s row, with the values it ran with (after the rejected records before it); `i`: its index in
   * the chunk's records (and `lines`).
   */
  add(fields: readonly string[], o: SheetOutcome, i?: number): void {
    this.upTo(o.n);
    if (i !== undefined && this.d >= 0 && !o.failure && this.copied(i, o)) return;
    this.add1(
      plainRowText(fields, this.width, o, this.delimiter) ??
        sheetRowText(fields, this.width, o, this.delimiter),
    );
  }

  /** A succeeded record's row from its bytes in the range, when they are what the writer would write. */
  private copied(i: number, o: SheetOutcome): boolean {
    const { bytes, starts, ends } = this.lines!;
    const from = starts[i];
    const to = ends[i];
    if (from === undefined || to === undefined || !plainLine(bytes, from, to, this.d, this.width))
      return false;
    const output = o.output;
    if (!plainCell(output, this.d)) return false;
    // The record's bytes, then `<d>` and succeededTail's text as bytes (the delimiter is one ASCII byte here): no
    // string per row.
    this.reserve(to - from + SUCCEEDED_TAIL_ROOM + output.length * 3);
    const buf = this.buf;
    let at = this.used;
    if (to - from <= SHORT_LINE) for (let k = from; k < to; k++) buf[at++] = bytes[k]!;
    else at += bytes.copy(buf, at, from, to);
    this.used = at + writeSucceededTail(buf, at, o.n, o.line, output, this.d);
    return true;
  }

  private add1(rowText: string): void {
    if (this.text) return this.text.add(rowText);
    // A row's UTF-8 takes at most 3 bytes a UTF-16 unit (a row ends with CRLF: no pair is split between rows).
    this.reserve(rowText.length * 3);
    this.used += this.buf.write(rowText, this.used, 'utf8');
  }

  private reserve(n: number): void {
    this.buf = withRoom(this.buf, this.used, n, 64 * 1024);
  }

  private upTo(n: number): void {
    const rejected = this.rejected;
    for (let f = rejected[this.r]; f && f.n < n; f = rejected[++this.r]) {
      this.add1(
        sheetRowText(
          rawFields(f.raw, this.delimiter),
          this.width,
          { n: f.n, line: f.line, failure: f, rejectedRaw: f.raw, output: '' },
          this.delimiter,
        ),
      );
    }
  }

  /** The rows, encoded (the rejected records after the last one run included). */
  bytes(): Buffer {
    this.upTo(Infinity);
    return this.text ? this.text.bytes() : this.buf.subarray(0, this.used);
  }
}

/** A record's bytes up to this long are copied in JS (a native copy's call costs more). */
const SHORT_LINE = 256;

/**
 * Whether a chunk's part carries its rows of results.csv: a first run's chunk whose every numbered record is at
 * hand (`records` run + `rejected`). A retry's or a resubmission's part holds only the records its attempt runs,
 * merged with the sheet before by the finalize, which reads the source for those (as it did for every job).
 */
export function writesSheetRows(
  msg: Pick<ChunkMessage, 'run' | 'numbered' | 'records'>,
  records: number,
  rejected: readonly RejectedRecord[] | undefined,
): rejected is readonly RejectedRecord[] {
  return !msg.run && !msg.numbered && rejected !== undefined && records + rejected.length === msg.records;
}

/**
 * A succeeded record's row as {@link sheetRowText} writes it, when no cell needs quoting or the formula guard (most
 * rows of most files): its cells joined as they are, without the writer's two tests per cell. Undefined: some cell
 * does (or the delimiter is not one character), and the writer decides. test/unit/core/work/sheet-rows.test.ts
 * holds the two alike.
 */
export function plainRowText(
  fields: readonly string[],
  width: number,
  o: SheetOutcome,
  delimiter: string,
): string | undefined {
  if (o.failure || fields.length !== width || delimiter.length !== 1) return undefined;
  const d = delimiter.charCodeAt(0);
  let text = '';
  for (let i = 0; i < width; i++) {
    const v = fields[i]!;
    if (!plainCell(v, d)) return undefined;
    text += i > 0 ? delimiter + v : v;
  }
  if (!plainCell(o.output, d)) return undefined;
  // The record and line numbers are digits; the status is a word; code and message are empty.
  const sep = width > 0 ? delimiter : '';
  return `${text}${sep}${succeededTail(o.n, o.line, o.output, delimiter)}`;
}
