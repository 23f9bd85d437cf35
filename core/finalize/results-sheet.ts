import iconv from 'iconv-lite';
import { parse as csvParse } from 'csv-parse';
import { createInflateRaw } from 'node:zlib';
import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import { NAME_HASH_CHARS, splitPart, type RecordFailure } from '../messages/part.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { scanRangeBatches, scanRecordBatches } from '../source/scan.ts';
import type { RangeStart } from '../source/csv.ts';
import type { Readable } from 'node:stream';
import { NUMBERED_COLUMNS } from '../messages/chunk.ts';
import { attemptsOf, currentAttempt } from '../jobs/attempts.ts';
import { keys, type ResubmitFile } from '../jobs/keys.ts';
import { csvTextLine } from '../source/write.ts';
import { LOCAL_HEADER_SIZE } from '../messages/zip.ts';
import {
  encodeSheetText,
  RESULT_COLUMNS,
  rawFields,
  resultsEncoding,
  SHEET_BATCH_CHARS,
  sheetRowText,
  shownOutputs,
  statusOf,
} from '../messages/results-row.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import type { RecordStatus } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { RecordStatus };

/**
 * `results.csv`: the user's own sheet back, every record in its original order with its original columns, then
 * what became of it. Written by every finalize (each attempt's over the whole job: the latest outcome of each
 * record), streamed: the validated source is read again record by record, each record's outcome looked up in a
 * map of the failures (every record not in it succeeded) and its outputs in the one part that holds it, so no
 * more than one part and one batch of rows are in memory whatever the job's size.
 */

// The row's rules are core/messages/results-row.ts's (the workers write their records' rows with them).
export { RESULT_COLUMNS, rawFields, resultsEncoding, statusOf };

/**
 * The outputs of succeeded records, part by part in record order: the entry names of each record's outputs (from
 * the part's meta and its entries' local headers), or, where an output says what the side effect answered (a
 * JSON object with a `messageId`, as the mail processor's), that answer. Asked with increasing record numbers, it
 * reads each part's names and entries with a cursor, record by record: no map or string per record of a part
 * (at 1M records those were promoted to the old space part after part and grew the heap).
 */
export class PartOutputs {
  private at = 0;
  private current: PartCursor | undefined;
  private readonly ahead: Promise<Buffer>[] = [];

  constructor(
    private readonly chunkIds: readonly number[],
    private readonly fetch: (chunk: number) => Promise<Buffer>,
    private readonly prefetch = 2,
  ) {}

  private next(): Promise<Buffer> | undefined {
    while (this.ahead.length < this.prefetch && this.at < this.chunkIds.length) {
      const p = this.fetch(this.chunkIds[this.at++]!);
      p.catch(() => undefined); // awaited in turn
      this.ahead.push(p);
    }
    return this.ahead.shift();
  }

  /** Record `n`'s outputs; a string at once while the part read last holds `n` (a promise only for the next part). */
  of(n: number): string | Promise<string> {
    const c = this.current;
    if (c && c.last >= n) return n >= c.first ? c.outputsOf(n) : '';
    return this.load(n);
  }

  private async load(n: number): Promise<string> {
    while (!this.current || this.current.last < n) {
      const p = this.next();
      if (!p) return '';
      const { meta, entries } = splitPart(await p);
      if (meta.first === undefined || meta.records === undefined) continue;
      this.current = new PartCursor(meta.first, meta.first + meta.records - 1, meta.names ?? '', entries);
    }
    return n >= this.current.first ? this.current.outputsOf(n) : '';
  }
}

/** One part's {@link PartMeta.names} and entries, read forward as records are asked in increasing order. */
class PartCursor {
  /** Where the next record's "n:line:hashes" begins in `names`. */
  private at = 0;
  /** Where the next record's first entry begins in `entries`. */
  private o = 0;

  constructor(
    readonly first: number,
    readonly last: number,
    private readonly names: string,
    private readonly entries: Buffer,
  ) {}

  /** Record `n`'s outputs as results.csv shows them; '' when the part lists no outputs for it. */
  outputsOf(n: number): string {
    const names = this.names;
    while (this.at < names.length) {
      let end = names.indexOf(' ', this.at);
      if (end < 0) end = names.length;
      const c1 = names.indexOf(':', this.at);
      const c2 = names.indexOf(':', c1 + 1);
      if (c1 < 0 || c1 > end || c2 < 0 || c2 > end) throw new Error(`part names: no "n:line:" at ${this.at}`);
      const r = Number(names.slice(this.at, c1));
      if (r > n) return '';
      this.at = end + 1;
      const shown = this.take(Math.ceil((end - c2 - 1) / NAME_HASH_CHARS), r === n);
      if (r === n) return shown;
    }
    return '';
  }

  /** Moves past a record's `count` entries; what they show when `show`. */
  private take(count: number, show: boolean): string {
    const { shown, next } = shownOutputs(this.entries, this.o, count);
    this.o = next;
    return show ? shown : '';
  }
}

/**
 * The rows of the results.csv an attempt before wrote (a streamed, deflated entry starting at `offset` of its zip),
 * decoded and parsed as a stream: each record's number and output.
 */
export async function earlierSheet(
  deps: Pick<PipelineDeps, 'objects'>,
  job: Job,
  zipKey: string,
  offset: number,
): Promise<AsyncIterator<{ n: number; output: string }>> {
  const head = await deps.objects.bytes(zipKey, { start: offset, end: offset + LOCAL_HEADER_SIZE - 1 });
  const dataAt = offset + LOCAL_HEADER_SIZE + head.readUInt16LE(26) + head.readUInt16LE(28);
  const raw = await deps.objects.stream(zipKey, { start: dataAt });
  // The deflate stream ends by itself: what follows it (the descriptor, the central directory) is ignored.
  const inflate = createInflateRaw();
  raw.pipe(inflate);
  inflate.once('end', () => raw.destroy());
  const text = inflate.pipe(iconv.decodeStream(resultsEncoding(job) === 'cp932' ? 'cp932' : 'utf8'));
  const rows = text.pipe(csvParse({ bom: true, delimiter: job.delimiter ?? ',', from_line: 2 }));
  async function* read() {
    try {
      for await (const r of rows as AsyncIterable<string[]>) {
        yield { n: Number(r[r.length - 6]), output: r[r.length - 1] ?? '' };
      }
    } finally {
      // Closed early (or failed): the read of the zip ends with it.
      raw.destroy();
      inflate.destroy();
    }
  }
  return read();
}

/** The outputs results.csv of an attempt before showed, for records this attempt did not run; asked in order. */
export class EarlierOutputs {
  private row: { n: number; output: string } | undefined;
  private done = false;

  constructor(
    private readonly rows: AsyncIterator<{ n: number; output: string }>,
    private readonly runs: ReadonlySet<number>,
  ) {}

  /** Undefined for a record this attempt ran (its outputs are in this attempt's parts). */
  async of(n: number): Promise<string | undefined> {
    if (this.runs.has(n)) return undefined;
    while (!this.done && (!this.row || this.row.n < n)) {
      const next = await this.rows.next();
      if (next.done) this.done = true;
      else this.row = next.value;
    }
    return this.row?.n === n ? this.row.output : '';
  }

  /** Stops reading the sheet before (its rows after the last record asked are not needed). */
  async close(): Promise<void> {
    await this.rows.return?.();
  }
}

/**
 * The values a record last ran with, where a resubmission (core/intake/resubmit.ts) gave it other values than
 * the job's file: each resubmitted attempt's own source (its records by number, led by their number and line)
 * and its rows the split's record rules rejected, the latest attempt first. Streamed like the sheet: asked with
 * increasing record numbers, each source is read once, in order; only the rejected rows (few) are held.
 */
export class LatestValues {
  private constructor(private readonly sources: ValueSource[]) {}

  /** The values of the job's resubmitted attempts up to its current one; undefined when none was resubmitted. */
  static async open(
    deps: Pick<PipelineDeps, 'objects' | 'limits'>,
    job: Job,
  ): Promise<LatestValues | undefined> {
    const { site, token } = job;
    const resubmitted = attemptsOf(job)
      .filter((a) => a.resubmit !== undefined && a.n <= currentAttempt(job))
      .reverse();
    if (resubmitted.length === 0) return undefined;
    const delimiter = job.delimiter ?? ',';
    const sources: ValueSource[] = [];
    for (const a of resubmitted) {
      const key = (file: ResubmitFile) => keys.resubmit(site, token, a.n, a.resubmit!, file);
      // A resubmission writes both objects, empty or not (core/intake/resubmit.ts).
      const rejected = new Map<number, string[]>();
      for (const l of (await deps.objects.bytes(key('rejected.jsonl'))).toString('utf8').split('\n')) {
        if (!l) continue;
        const f = JSON.parse(l) as RecordFailure;
        rejected.set(f.n, rawFields(f.raw, delimiter));
      }
      const rows = numberedRows(await deps.objects.stream(key('source.csv')), {
        header: [...NUMBERED_COLUMNS, ...(job.header ?? [])],
        delimiter,
        n: 1,
        line: 1,
        maxRecordBytes: deps.limits.maxRecordBytes,
      });
      sources.push({ rejected, rows, done: false });
    }
    return new LatestValues(sources);
  }

  /** Record `n`'s values from the latest attempt that resubmitted it; undefined: the job's file's. */
  async of(n: number): Promise<string[] | undefined> {
    let found: string[] | undefined;
    for (const s of this.sources) {
      while (!s.done && (!s.row || s.row.n < n)) {
        const next = await s.rows.next();
        if (next.done) s.done = true;
        else s.row = next.value;
      }
      // Every source is moved past `n` (the next record asks from there), the latest one's answer kept.
      found ??= s.rejected.get(n) ?? (s.row?.n === n ? s.row.fields : undefined);
    }
    return found;
  }

  async close(): Promise<void> {
    for (const s of this.sources) await s.rows.return(undefined);
  }
}

interface ValueSource {
  readonly rejected: ReadonlyMap<number, string[]>;
  readonly rows: AsyncGenerator<{ n: number; fields: string[] }>;
  row?: { n: number; fields: string[] };
  done: boolean;
}

/** The records of a resubmission's own source: number and fields. */
async function* numberedRows(
  body: Readable,
  start: RangeStart,
): AsyncGenerator<{ n: number; fields: string[] }> {
  try {
    for await (const batch of scanRangeBatches(body as AsyncIterable<Buffer>, start)) {
      for (const e of batch) {
        if (e.kind === 'record' && e.fields) {
          yield { n: Number(e.fields[0]), fields: e.fields.slice(NUMBERED_COLUMNS.length) };
        }
      }
    }
  } finally {
    body.destroy();
  }
}

/**
 * results.csv as a stream of encoded bytes: the header (the file's columns, then {@link RESULT_COLUMNS}), then
 * every record of the job's validated source in order. `failures` holds each record's latest failure (errors.csv's
 * rows); a record not in it succeeded, its outputs from `outputs`.
 */
export async function* resultsCsv(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Job,
  failures: ReadonlyMap<number, RecordFailure>,
  outputs: PartOutputs,
  before?: EarlierOutputs,
  /** Values resubmissions gave records (shown instead of the file's: the values each record last ran with). */
  values?: LatestValues,
): AsyncGenerator<Buffer> {
  const encoding = resultsEncoding(job);
  const delimiter = job.delimiter ?? ',';
  const width = job.header?.length ?? 0;
  const encode = (text: string) => encodeSheetText(text, encoding);
  const csv = { delimiter, guard: true };
  // The rows written since the last flush, as text (a row's text is its cells' CSV at once: no arrays kept).
  let text = '';
  if (encoding === 'utf-8-bom') yield Buffer.from([0xef, 0xbb, 0xbf]);
  let last = -1; // the last record written (0: the header)
  const flush = () => {
    const bytes = encode(text);
    text = '';
    return bytes;
  };
  const opts = { maxRecordBytes: deps.limits.maxRecordBytes, withFields: true };
  // A succeeded record's outputs: from the sheet before when an attempt before ran it, else from its part.
  const outputOf = (n: number): string | Promise<string> => {
    if (!before) return outputs.of(n);
    return before.of(n).then((o) => o ?? outputs.of(n));
  };
  try {
    const utf8 = decodeToUtf8(await deps.objects.stream(job.sourceKey));
    for await (const batch of scanRecordBatches(utf8, opts)) {
      for (const ev of batch) {
        if (ev.kind === 'header') {
          text += csvTextLine([...ev.header, ...RESULT_COLUMNS], csv);
        } else {
          const failure = failures.get(ev.n);
          // Awaited only when the next part is read (or a sheet before is): no promise per record.
          let output = failure ? '' : outputOf(ev.n);
          if (typeof output !== 'string') output = await output;
          const resubmitted = values ? await values.of(ev.n) : undefined;
          const own =
            resubmitted ?? (ev.kind === 'record' ? (ev.fields ?? []) : rawFields(ev.raw, delimiter));
          text += sheetRowText(
            own,
            width,
            {
              n: ev.n,
              line: ev.line,
              failure,
              rejectedRaw: ev.kind === 'rejected' ? ev.raw : undefined,
              output,
            },
            delimiter,
          );
        }
        last = ev.kind === 'header' ? 0 : ev.n;
        if (text.length >= SHEET_BATCH_CHARS) yield flush();
      }
    }
  } catch (err) {
    // The source cannot be read (gone, changed): the records not written yet are listed all the same, with their
    // outcome and without their columns, rather than the job never finishing.
    jobLogger(job.site, job.token).warn(
      'results.csv: records listed without their columns: the source could not be read',
      {
        error: errorMessage(err),
        after: last,
      },
    );
    if (last < 0) text += csvTextLine([...(job.header ?? []), ...RESULT_COLUMNS], csv);
    for (let n = Math.max(1, last + 1); n <= (job.totalRecords ?? 0); n++) {
      const failure = failures.get(n);
      let output = failure ? '' : outputOf(n);
      if (typeof output !== 'string') output = await output;
      const own = (values ? await values.of(n) : undefined) ?? [];
      text += csvTextLine(
        [
          ...Array.from({ length: width }, (_, i) => own[i] ?? ''),
          String(n),
          failure ? String(failure.line) : '',
          statusOf(failure?.code),
          failure?.code ?? '',
          failure?.message ?? '',
          output,
        ],
        csv,
      );
      if (text.length >= SHEET_BATCH_CHARS) yield flush();
    }
  }
  if (text.length > 0) yield flush();
}
