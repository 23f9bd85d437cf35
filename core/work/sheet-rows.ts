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
    this.out.add(sheetRowText(fields, this.width, o, this.delimiter));
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
