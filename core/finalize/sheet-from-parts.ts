import type { Job } from '../jobs/store.ts';
import type { PartMeta, RecordFailure } from '../messages/part.ts';
import { csvTextLine } from '../source/write.ts';
import {
  encodeSheetText,
  rawFields,
  RESULT_COLUMNS,
  resultsEncoding,
  SheetBytes,
  sheetRowText,
} from '../messages/results-row.ts';

/**
 * results.csv from the rows the workers wrote into their parts (core/work/sheet-rows.ts, PartMeta.sheet): the
 * header, then each part's rows as they are, in chunk order, with the rows of the records the split rejected that
 * no chunk's range holds (a run of rejections only is never a chunk) between them. The source is not read again.
 *
 * It is how a job's first, whole attempt gets its sheet: every record in a part with its rows or rejected by the
 * split, each failure the part's own. Anything else — a retry's or a resubmission's attempt (merged with the sheet
 * before), a job stopped early (records no part holds), records refused at finalize for their entry names,
 * counts that disagree, a part written before parts had rows (a job in flight when this was deployed) or a
 * given-up chunk's part — takes the sheet from the source as before (results-sheet.ts resultsCsv), the same bytes.
 */
export function sheetFromParts(
  metas: readonly Pick<PartMeta, 'first' | 'records' | 'sheet'>[],
  rejected: readonly Pick<RecordFailure, 'n'>[],
  total: number,
): boolean {
  const isRejected = new Set(rejected.map((f) => f.n));
  let next = 1;
  for (const m of metas) {
    if (!m.sheet || m.first === undefined || m.records === undefined || m.first < next) return false;
    for (; next < m.first; next++) if (!isRejected.has(next)) return false;
    next = m.first + m.records;
  }
  for (; next <= total; next++) if (!isRejected.has(next)) return false;
  return next === total + 1;
}

/**
 * The sheet's bytes written to `write` as the parts come, in chunk order (the finalize copies their entries into
 * the zip meanwhile): {@link begin}, {@link part} for each, then {@link end}. Memory: one part's rows.
 */
export class PartsSheet {
  private readonly encoding: 'cp932' | 'utf-8-bom';
  private readonly delimiter: string;
  private readonly width: number;
  /** The split's rejections, by record number; `r` is the next not written (nor held by a part). */
  private readonly rejected: readonly RecordFailure[];
  private r = 0;
  bytes = 0;

  constructor(
    private readonly job: Pick<Job, 'encoding' | 'delimiter' | 'header'>,
    rejected: readonly RecordFailure[],
    private readonly write: (b: Buffer) => Promise<void>,
  ) {
    this.encoding = resultsEncoding(job);
    this.delimiter = job.delimiter ?? ',';
    this.width = job.header?.length ?? 0;
    this.rejected = [...rejected].sort((a, b) => a.n - b.n);
  }

  private async put(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.bytes += b.length;
    await this.write(b);
  }

  /** The BOM (UTF-8) and the header: the file's columns, then the sheet's own. */
  async begin(): Promise<void> {
    if (this.encoding === 'utf-8-bom') await this.put(Buffer.from([0xef, 0xbb, 0xbf]));
    const header = csvTextLine([...(this.job.header ?? []), ...RESULT_COLUMNS], {
      delimiter: this.delimiter,
      guard: true,
    });
    await this.put(encodeSheetText(header, this.encoding));
  }

  /** A part's rows: the rejected records before its range first; those in its range are its own rows. */
  async part(meta: Pick<PartMeta, 'first' | 'records'>, rows: Buffer): Promise<void> {
    const first = meta.first ?? 0;
    await this.rejectedBelow(first);
    const last = first + (meta.records ?? 0) - 1;
    while (this.rejected[this.r] && this.rejected[this.r]!.n <= last) this.r++;
    await this.put(rows);
  }

  /** The rejected records after the last part. */
  async end(): Promise<void> {
    await this.rejectedBelow(Infinity);
  }

  private async rejectedBelow(n: number): Promise<void> {
    const rows = new SheetBytes(this.encoding);
    for (let f = this.rejected[this.r]; f && f.n < n; f = this.rejected[++this.r]) {
      rows.add(
        sheetRowText(
          rawFields(f.raw, this.delimiter),
          this.width,
          { n: f.n, line: f.line, failure: f, rejectedRaw: f.raw, output: '' },
          this.delimiter,
        ),
      );
    }
    await this.put(rows.bytes());
  }
}
