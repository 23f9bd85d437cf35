/** A chunk's records read back from its byte range of the source, checked against what the split saw. */
import { NUMBERED_COLUMNS, rangeNumbers, runsRecord, type ChunkMessage } from '../messages/chunk.ts';
import { readRange } from '../source/scan.ts';
import type { RejectedRecord } from '../source/csv.ts';
import type { Objects } from '../aws/objects.ts';
import { SourceChangedError } from '../shared/errors.ts';
import { keys } from '../jobs/keys.ts';
import type { Job } from '../jobs/store.ts';

/** The numbers of the records the split rejected (its rejected.jsonl); empty when it rejected none. */
export async function splitRejected(job: Job, objects: Objects): Promise<ReadonlySet<number>> {
  const rejected = new Set<number>();
  if (!job.rejected) return rejected;
  const text = (await objects.bytes(keys.rejected(job.site, job.token))).toString('utf8');
  for (const l of text.split('\n')) if (l) rejected.add((JSON.parse(l) as { n: number }).n);
  return rejected;
}

/**
 * Where a chunk's records are in the bytes of its range: record `i`'s text (without its line ending) is
 * `bytes[starts[i], ends[i])` — from the end of the record before it, so a blank line skipped before it is in it.
 * The sheet rows copy a plain record's bytes from there (sheet-rows.ts).
 */
export interface SourceLines {
  readonly bytes: Buffer;
  readonly starts: number[];
  readonly ends: number[];
}

/** A chunk's records as read (number, line, fields), with where they are in the range when it read them. */
export type ChunkRows = [number, number, string[]][] & { lines?: SourceLines };

const CR = 0x0d;
const LF = 0x0a;

/**
 * Reads a chunk's records from its byte range of the source (same parser and rules as the split), pinned to the
 * version the split validated (S3 If-Match on the ETag the chunk names). Every numbered record of the range is
 * accounted for: the accepted ones are returned (of a retry's attempt, only those it runs: the message's `run`), and the rejected ones must be exactly those the split rejected
 * (`rejected`, from {@link splitRejected}). Bytes that are not what the split saw — another version of the object
 * (412), a record one side accepts and the other rejects — throw {@link SourceChangedError}: the chunk fails
 * loudly, and no record is ever dropped. A short read, or another record count, is a read that went wrong: an
 * error retried like any other (the chunk's records end CHUNK_FAILED if it never reads right).
 * The range's rejected records (as read: number, line, code, message, text) go into `rejectedOut` when given:
 * their rows of results.csv are the chunk's too.
 */
export async function chunkRecords(
  job: Job,
  msg: ChunkMessage,
  objects: Objects,
  maxRecordBytes: number,
  rejected: ReadonlySet<number>,
  rejectedOut?: RejectedRecord[],
): Promise<ChunkRows> {
  const bytes =
    msg.end > msg.start
      ? await objects.bytes(msg.key, { start: msg.start, end: msg.end - 1 }, msg.etag)
      : Buffer.alloc(0);
  if (bytes.length !== Math.max(0, msg.end - msg.start)) {
    throw new Error(`chunk ${msg.chunk}: read ${bytes.length} bytes of a ${msg.end - msg.start}-byte range`);
  }
  if (msg.numbered) return numberedRecords(job, msg, bytes, maxRecordBytes);
  const events = readRange(bytes, {
    header: job.header ?? [],
    delimiter: job.delimiter ?? ',',
    n: msg.n,
    line: msg.line,
    maxRecordBytes,
  });
  const numbered = events.filter((e) => e.kind !== 'header');
  if (numbered.length !== msg.records || numbered[0]?.n !== msg.n) {
    throw new Error(
      `chunk ${msg.chunk}: expected ${msg.records} records from ${msg.n}, read ${numbered.length} from ${numbered[0]?.n}`,
    );
  }
  const records: ChunkRows = [];
  const lines: SourceLines = { bytes, starts: [], ends: [] };
  // Not enumerable: the records compare and print as the plain list they are.
  Object.defineProperty(records, 'lines', { value: lines });
  let prev = 0;
  for (const e of numbered) {
    const from = prev;
    prev = e.end;
    if (e.kind === 'record' && !rejected.has(e.n)) {
      // A retry's attempt reads its range whole (same numbers, same lines) and runs only its own records.
      if (runsRecord(msg, e.n)) {
        records.push([e.n, e.line, e.fields]);
        let to = e.end;
        if (to > from && bytes[to - 1] === LF) to--;
        if (to > from && bytes[to - 1] === CR) to--;
        lines.starts.push(from);
        lines.ends.push(to);
      }
    } else if (e.kind === 'record' || !rejected.has(e.n)) {
      throw new SourceChangedError(
        `chunk ${msg.chunk}: record ${e.n} (line ${e.line}) was ${rejected.has(e.n) ? 'rejected' : 'accepted'} by the split and ${e.kind === 'record' ? 'accepted' : 'rejected'} here`,
      );
    } else if (e.kind === 'rejected') {
      rejectedOut?.push({ n: e.n, line: e.line, code: e.code, message: e.message, raw: e.raw });
    }
  }
  return records;
}

/**
 * The records of a range of a resubmitted file's own source (`numbered` chunk messages): each carries its number
 * and line in the job's file in its first two columns, then its fields. The intake wrote only records the split's
 * rules accept, so every one must be accepted here and be the records `run` names, in order; anything else is a
 * read that went wrong (retried, then CHUNK_FAILED).
 */
function numberedRecords(
  job: Job,
  msg: ChunkMessage,
  bytes: Buffer,
  maxRecordBytes: number,
): [number, number, string[]][] {
  const events = readRange(bytes, {
    header: [...NUMBERED_COLUMNS, ...(job.header ?? [])],
    delimiter: job.delimiter ?? ',',
    n: 1,
    line: 1,
    maxRecordBytes,
  });
  const wanted = rangeNumbers(msg.run ?? []);
  const records: [number, number, string[]][] = [];
  for (const e of events) {
    if (e.kind === 'header') continue;
    const n = e.kind === 'record' ? Number(e.fields[0]) : NaN;
    if (e.kind !== 'record' || n !== wanted[records.length]) {
      throw new Error(
        `chunk ${msg.chunk}: record ${records.length + 1} of the resubmitted range is not record ${wanted[records.length]}`,
      );
    }
    records.push([n, Number(e.fields[1]), e.fields.slice(NUMBERED_COLUMNS.length)]);
  }
  if (records.length !== msg.records || records.length !== wanted.length) {
    throw new Error(`chunk ${msg.chunk}: expected ${msg.records} records, read ${records.length}`);
  }
  return records;
}
