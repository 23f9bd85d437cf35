import type { RecordPosition } from '../source/csv.ts';
import type { PipelineDeps } from '../deps.ts';
import { batchBodies } from '../aws/queues.ts';

/**
 * One queue message: a claim check for a run of records — a byte range of the job's UTF-8 source in S3,
 * with the number and line of its first record. Messages stay ~200 bytes whatever the records hold, so
 * SQS costs one request per chunk (never per row, never per 64 KiB of payload) and the parsing of the
 * records is spread over the workers.
 */
export interface ChunkMessage {
  readonly v: 2;
  readonly site: string;
  readonly token: string;
  readonly chunk: number;
  /** S3 key of the UTF-8 source the range refers to. */
  readonly key: string;
  /** Byte range [start, end) of the source. */
  readonly start: number;
  readonly end: number;
  /** Number of the first record in the range and the physical line the range starts on. */
  readonly n: number;
  readonly line: number;
  /** Numbered records in the range (rejected ones included), checked by the worker. */
  readonly records: number;
  /**
   * The ETag of the source version the split validated: every range read carries it (S3 If-Match), so a worker
   * never reads bytes the split did not see. Absent only in messages of splits older than this field.
   */
  readonly etag?: string;
  /**
   * A retry's attempt (2, 3, …; absent: the job's first run) and the records of the range it runs, as inclusive
   * ranges of record numbers: the range is read and checked whole (same numbers, same lines as the split's), and
   * only these records are processed, counted and written (core/intake/rerun-failed.ts).
   */
  readonly attempt?: number;
  readonly run?: readonly (readonly [number, number])[];
  /**
   * The job's (or its retry attempt's) span context, W3C traceparent: each attempt at the chunk is a span linked
   * to it. Optional (~70 bytes): messages without it parse, their chunks are not traced.
   */
  readonly traceparent?: string;
  /**
   * The range is of a resubmitted file's own source (core/intake/resubmit.ts), not of the split's: each of its
   * records starts with two columns, the record's number and its line in the job's file, then the record's
   * (corrected) fields. Its numbers are not consecutive: `run` lists them, `n` and `line` are its first record's,
   * `records` is how many it holds (every one accepted and run). Absent: the split's numbering.
   */
  readonly numbered?: true;
}

/**
 * The two columns a resubmitted file's own source leads each record with (`numbered` messages): the record's
 * number and its line in the job's file. The source has no header row: its readers are told this one.
 */
export const NUMBERED_COLUMNS = ['rowfleet_record', 'rowfleet_line'] as const;

/** The attempt a chunk message belongs to (1: the job's first run). */
export const attemptOf = (msg: Pick<ChunkMessage, 'attempt'>): number => msg.attempt ?? 1;

/** Whether a chunk message's attempt runs record `n` (a first run: every record of its range). */
export function runsRecord(msg: Pick<ChunkMessage, 'run'>, n: number): boolean {
  return !msg.run || msg.run.some(([a, b]) => n >= a && n <= b);
}

/** The record numbers of inclusive ranges, in order. */
export function rangeNumbers(ranges: readonly (readonly [number, number])[]): number[] {
  return ranges.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k));
}

/** Sorted record numbers as inclusive ranges of consecutive numbers. */
export function asRanges(numbers: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const n of numbers) {
    const last = out[out.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else out.push([n, n]);
  }
  return out;
}

export interface ChunkLimits {
  /** Source bytes per chunk. */
  readonly maxBytes: number;
  readonly maxRecords: number;
}

/** Groups consecutive records into chunks by a byte budget and a record cap. */
export class Chunker {
  private next = 0;
  private start: number;
  private line: number;
  private firstN = 0;
  private count = 0;
  private accepted = 0;
  private lastEnd: number;
  private lastLine: number;

  /** `after` is the position of the header: the first chunk starts right behind it. */
  constructor(
    private readonly site: string,
    private readonly token: string,
    private readonly key: string,
    after: RecordPosition,
    private readonly limits: ChunkLimits,
    /** Added to every offset (the bytes of a BOM the source keeps but the parser did not see). */
    private readonly shift = 0,
  ) {
    this.start = this.lastEnd = after.end;
    this.line = this.lastLine = after.endLine + 1;
  }

  /** Number of chunks emitted so far. */
  get chunks(): number {
    return this.next;
  }

  /**
   * Adds a numbered record (accepted, or rejected: `kind: 'rejected'`); returns a chunk when one is full.
   * A run of rejected records only is never a chunk: there is nothing for a worker to do in it.
   */
  add(rec: { n: number; kind?: string } & RecordPosition): ChunkMessage | undefined {
    if (this.count === 0) this.firstN = rec.n;
    this.count++;
    if (rec.kind !== 'rejected') this.accepted++;
    this.lastEnd = rec.end;
    this.lastLine = rec.endLine;
    if (this.lastEnd - this.start >= this.limits.maxBytes || this.count >= this.limits.maxRecords)
      return this.flush();
    return undefined;
  }

  flush(): ChunkMessage | undefined {
    if (this.count === 0) return undefined;
    if (this.accepted === 0) {
      this.skip();
      return undefined;
    }
    const msg: ChunkMessage = {
      v: 2,
      site: this.site,
      token: this.token,
      chunk: this.next++,
      key: this.key,
      start: this.start + this.shift,
      end: this.lastEnd + this.shift,
      n: this.firstN,
      line: this.line,
      records: this.count,
    };
    this.skip();
    return msg;
  }

  /** Moves past the records taken so far: the next chunk starts behind them. */
  private skip(): void {
    this.start = this.lastEnd;
    this.line = this.lastLine + 1;
    this.count = 0;
    this.accepted = 0;
  }
}

export function decodeChunk(body: string): ChunkMessage {
  const msg = JSON.parse(body) as Partial<ChunkMessage>;
  const numbers = [msg.chunk, msg.start, msg.end, msg.n, msg.line, msg.records];
  if (
    msg.v !== 2 ||
    typeof msg.site !== 'string' ||
    typeof msg.token !== 'string' ||
    typeof msg.key !== 'string' ||
    (msg.etag !== undefined && typeof msg.etag !== 'string') ||
    // A malformed traceparent only goes untraced (core/shared/trace.ts parseTraceparent); its chunk still runs.
    (msg.traceparent !== undefined && typeof msg.traceparent !== 'string') ||
    !numbers.every((x) => Number.isInteger(x)) ||
    (msg.attempt !== undefined && (!Number.isInteger(msg.attempt) || msg.attempt < 1)) ||
    (msg.numbered !== undefined && (msg.numbered !== true || msg.run === undefined)) ||
    (msg.run !== undefined &&
      (!Array.isArray(msg.run) ||
        !msg.run.every((r) => Array.isArray(r) && r.length === 2 && r.every((x) => Number.isInteger(x)))))
  ) {
    throw new Error('not a Rowfleet chunk message');
  }
  return msg as ChunkMessage;
}

export interface MergeLimits {
  /** Records per chunk to aim for (so every worker gets several chunks). */
  readonly targetRecords: number;
  readonly maxBytes: number;
  readonly maxRecords: number;
}

/**
 * Joins consecutive fine-grained chunks into work units once the split knows how many records and workers
 * there are: small jobs get enough chunks for every worker, large ones get chunks up to the limits.
 * A gap between two chunks holds only rejected records; a merged range takes it in (the workers skip
 * rejected records by the same rules), so its record count spans from the first to the last chunk.
 */
export function mergeChunks(subs: readonly ChunkMessage[], o: MergeLimits): ChunkMessage[] {
  const out: ChunkMessage[] = [];
  let cur: ChunkMessage | undefined;
  for (const s of subs) {
    if (cur) {
      const records = s.n + s.records - cur.n;
      if (records <= Math.min(o.targetRecords, o.maxRecords) && s.end - cur.start <= o.maxBytes) {
        cur = { ...cur, end: s.end, records };
        continue;
      }
      out.push(cur);
    }
    cur = { ...s, chunk: out.length };
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Creates a job's queue (the job's first run, or a retry's attempt: each has its own) and sends its chunk messages
 * on it, in batches of ten. Safe to repeat: a queue is created once by name, and a chunk sent twice is counted once (its part is stored once: core/work/worker.ts settleChunk).
 */
export async function queueChunks(
  deps: Pick<PipelineDeps, 'env' | 'queues' | 'timings'>,
  site: string,
  token: string,
  queueName: string,
  chunks: readonly ChunkMessage[],
): Promise<void> {
  const queueUrl = await deps.queues.createJobQueue({
    name: queueName,
    site,
    token,
    dlqArn: deps.env.dlqArn,
    timings: deps.timings,
  });
  await Promise.all(
    batchBodies(chunks.map((c) => JSON.stringify(c))).map((b) =>
      deps.queues.sendBatch(queueUrl, site, token, b),
    ),
  );
}
