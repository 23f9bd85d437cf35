import { pMapIterable } from 'p-map';
import type { Job } from '../jobs/store.ts';
import type { PipelineDeps } from '../deps.ts';
import { keys } from '../jobs/keys.ts';
import { decodeChunk, type ChunkMessage } from '../messages/chunk.ts';
import type { PartMeta, RecordFailure } from '../messages/part.ts';
import type { RecordEvent } from '../source/csv.ts';
import { readRange } from '../source/scan.ts';
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
 * no chunk's range holds (a run of rejections only is never a chunk) between them. The source is not read again,
 * except, for a job stopped early, the ranges of the chunks no part was counted for (their records' values: read
 * as the workers read them, with the split's chunk plan).
 *
 * It is how a job's first attempt gets its sheet: every record in a counted part with its rows, in a chunk of the
 * plan no part was counted for (a stopped job), or rejected by the split, each failure the part's own. Anything
 * else — a retry's or a resubmission's attempt (merged with the sheet before), records refused at finalize for
 * their entry names, counts that disagree, a part written before parts had rows (a job in flight when this was
 * deployed) or a given-up chunk's part whose range could not be read — takes the sheet from the source as before (results-sheet.ts
 * resultsCsv), the same bytes.
 */
export interface SheetPiece {
  /** The piece's range of records: a part's (PartMeta.first, records), or a chunk of the plan's (n, records). */
  readonly first?: number;
  readonly records?: number;
  /** Whether its rows are at hand: a part with rows, or a chunk of the plan (its range read from the source). */
  readonly rows: boolean;
}

/** Whether `pieces` (in order) and the split's rejections hold every record 1..total once, each piece with rows. */
export function sheetFromParts(
  pieces: readonly SheetPiece[],
  rejected: readonly Pick<RecordFailure, 'n'>[],
  total: number,
): boolean {
  const isRejected = new Set(rejected.map((f) => f.n));
  let next = 1;
  for (const m of pieces) {
    if (!m.rows || m.first === undefined || m.records === undefined || m.first < next) return false;
    for (; next < m.first; next++) if (!isRejected.has(next)) return false;
    next = m.first + m.records;
  }
  for (; next <= total; next++) if (!isRejected.has(next)) return false;
  return next === total + 1;
}

/** The split's chunk plan by chunk number; undefined when the job has none (split before it was kept). */
export async function chunkPlan(
  deps: Pick<PipelineDeps, 'objects'>,
  job: Pick<Job, 'site' | 'token'>,
): Promise<Map<number, ChunkMessage> | undefined> {
  const key = keys.chunkPlan(job.site, job.token);
  if ((await deps.objects.size(key)) === undefined) return undefined;
  const plan = new Map<number, ChunkMessage>();
  for (const l of (await deps.objects.bytes(key)).toString('utf8').split('\n')) {
    if (!l) continue;
    const msg = decodeChunk(l);
    plan.set(msg.chunk, msg);
  }
  return plan;
}

/** Ranges of the source read ahead of the one in hand ({@link chunkRanges}). */
const RANGES_AHEAD = 4;

/**
 * {@link chunkRange} of each chunk of `msgs`, in their order, a few read ahead: a stopped job's chunks that no part
 * was counted for are most of a large job (996 of 1,000 when a 100,000-record job is cancelled early), read one at a
 * time they were one round trip each, twice (errors.csv's text, results.csv's rows).
 */
export function chunkRanges(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Pick<Job, 'header' | 'delimiter'>,
  msgs: readonly ChunkMessage[],
): AsyncIterable<RecordEvent[]> {
  return pMapIterable(msgs, (m) => chunkRange(deps, job, m), {
    concurrency: RANGES_AHEAD,
    backpressure: RANGES_AHEAD,
  });
}

/**
 * A chunk's numbered records read from its range of the source (pinned to the version the split validated), as a
 * worker reads them (core/work/chunk-records.ts): for the rows of a chunk no part was counted for.
 */
export async function chunkRange(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Pick<Job, 'header' | 'delimiter'>,
  msg: ChunkMessage,
): Promise<RecordEvent[]> {
  const bytes =
    msg.end > msg.start
      ? await deps.objects.bytes(msg.key, { start: msg.start, end: msg.end - 1 }, msg.etag)
      : Buffer.alloc(0);
  const events = readRange(bytes, {
    header: job.header ?? [],
    delimiter: job.delimiter ?? ',',
    n: msg.n,
    line: msg.line,
    maxRecordBytes: deps.limits.maxRecordBytes,
  }).filter((e) => e.kind !== 'header');
  if (events.length !== msg.records || events[0]?.n !== msg.n) {
    throw new Error(
      `chunk ${msg.chunk}: expected ${msg.records} records from ${msg.n}, read ${events.length} from ${events[0]?.n}`,
    );
  }
  return events;
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

  /**
   * The rows of a chunk no part was counted for (a stopped job's), from its records as read (`events`): each with
   * its latest failure from `failures` (none: its effect claim says it was done; its outputs are not shown).
   */
  async source(
    msg: Pick<ChunkMessage, 'n' | 'records'>,
    events: readonly RecordEvent[],
    failures: ReadonlyMap<number, RecordFailure>,
  ): Promise<void> {
    await this.rejectedBelow(msg.n);
    const last = msg.n + msg.records - 1;
    while (this.rejected[this.r] && this.rejected[this.r]!.n <= last) this.r++;
    const rows = new SheetBytes(this.encoding);
    for (const ev of events) {
      if (ev.kind === 'header') continue;
      const rejectedRaw = ev.kind === 'rejected' ? ev.raw : undefined;
      const own = ev.kind === 'record' ? ev.fields : rawFields(ev.raw, this.delimiter);
      const failure = failures.get(ev.n);
      rows.add(
        sheetRowText(
          own,
          this.width,
          { n: ev.n, line: ev.line, failure, rejectedRaw, output: '' },
          this.delimiter,
        ),
      );
    }
    await this.put(rows.bytes());
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
