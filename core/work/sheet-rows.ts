/** A chunk's rows of results.csv, built as its records come out in order (the finalize copies them as they are). */
import type { ChunkMessage } from '../messages/chunk.ts';
import {
  rawFields,
  resultsEncoding,
  SheetBytes,
  sheetRowText,
  type SheetOutcome,
} from '../messages/results-row.ts';
import type { RejectedRecord } from '../source/csv.ts';
import type { Job } from '../jobs/store.ts';

/**
 * The rows of every numbered record of a chunk's range, in record order: each record run (its values, outcome and
 * outputs) and each record the split rejected (its fields as read, its rejection), as core/messages/results-row.ts
 * writes them — the same bytes the finalize wrote when it read the whole source again.
 */
export class SheetRows {
  private readonly out: SheetBytes;
  private readonly width: number;
  private readonly delimiter: string;
  /** The next of `rejected` not written yet. */
  private r = 0;

  constructor(
    job: Pick<Job, 'encoding' | 'header' | 'delimiter'>,
    private readonly rejected: readonly RejectedRecord[],
  ) {
    this.out = new SheetBytes(resultsEncoding(job));
    this.width = job.header?.length ?? 0;
    this.delimiter = job.delimiter ?? ',';
  }

  /** Record `o.n`'s row, with the values it ran with (after the rejected records before it). */
  add(fields: readonly string[], o: SheetOutcome): void {
    this.upTo(o.n);
    this.out.add(
      plainRowText(fields, this.width, o, this.delimiter) ??
        sheetRowText(fields, this.width, o, this.delimiter),
    );
  }

  private upTo(n: number): void {
    const rejected = this.rejected;
    for (let f = rejected[this.r]; f && f.n < n; f = rejected[++this.r]) {
      this.out.add(
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
    return this.out.bytes();
  }
}

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
  return `${text}${sep}${o.n}${delimiter}${o.line}${delimiter}succeeded${delimiter}${delimiter}${delimiter}${o.output}\r\n`;
}

/**
 * Whether the CSV writer (core/source/write.ts) with the formula guard writes `v` as it is: no character it quotes
 * (a quote, the delimiter `d`, CR, LF, a leading U+FEFF), no first character the guard may prefix (an
 * apostrophe, `=`, `+`, `-`, `@`, a tab).
 */
function plainCell(v: string, d: number): boolean {
  const len = v.length;
  if (len === 0) return true;
  const c0 = v.charCodeAt(0);
  if (c0 === 0x27 || c0 === 0x3d || c0 === 0x2b || c0 === 0x2d || c0 === 0x40 || c0 === 0x09 || c0 === 0xfeff)
    return false;
  for (let i = 0; i < len; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x22 || c === d || c === 0x0d || c === 0x0a) return false;
  }
  return true;
}
