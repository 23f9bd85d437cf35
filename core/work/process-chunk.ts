import { setTimeout as sleep } from 'node:timers/promises';
import type { ChunkMessage } from '../messages/chunk.ts';
import { recordToRaw } from '../source/csv.ts';
import { readRange } from '../source/scan.ts';
import type { Objects } from '../aws/objects.ts';
import { errorMessage, SourceChangedError, type RecordErrorCode } from '../shared/errors.ts';
import { keys } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import type { RowProcessor } from './processors/index.ts';
import { encodePart, type RecordFailure } from '../messages/part.ts';
import { dosDateTime, LocalEntries } from '../finalize/zip.ts';
import type { Job } from '../jobs/store.ts';

/** A chunk's result: its part object (zip entries, counts, failures) and its counts. */
export interface ProcessedChunk {
  readonly part: Buffer;
  readonly succeeded: number;
  readonly failed: number;
}

/** A record the processor fails on is tried this many times (with a short backoff) before it counts as failed. */
export const RECORD_ATTEMPTS = 3;
const RECORD_RETRY_BASE_MS = 10;

/** The numbers of the records the split rejected (its rejected.jsonl); empty when it rejected none. */
export async function splitRejected(job: Job, objects: Objects): Promise<ReadonlySet<number>> {
  const rejected = new Set<number>();
  if (!job.rejected) return rejected;
  const text = (await objects.bytes(keys.rejected(job.site, job.token))).toString('utf8');
  for (const l of text.split('\n')) if (l) rejected.add((JSON.parse(l) as { n: number }).n);
  return rejected;
}

/**
 * Reads a chunk's records from its byte range of the source (same parser and rules as the split), pinned to the
 * version the split validated (S3 If-Match on the ETag the chunk names). Every numbered record of the range is
 * accounted for: the accepted ones are returned, and the rejected ones must be exactly those the split rejected
 * (`rejected`, from {@link splitRejected}). Bytes that are not what the split saw — another version of the object
 * (412), a record one side accepts and the other rejects — throw {@link SourceChangedError}: the chunk fails
 * loudly, and no record is ever dropped. A short read, or another record count, is a read that went wrong: an
 * error retried like any other (the chunk's records end CHUNK_FAILED if it never reads right).
 */
export async function chunkRecords(
  job: Job,
  msg: ChunkMessage,
  objects: Objects,
  maxRecordBytes: number,
  rejected: ReadonlySet<number>,
): Promise<[number, number, string[]][]> {
  const bytes =
    msg.end > msg.start
      ? await objects.bytes(msg.key, { start: msg.start, end: msg.end - 1 }, msg.etag)
      : Buffer.alloc(0);
  if (bytes.length !== Math.max(0, msg.end - msg.start)) {
    throw new Error(`chunk ${msg.chunk}: read ${bytes.length} bytes of a ${msg.end - msg.start}-byte range`);
  }
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
  const records: [number, number, string[]][] = [];
  for (const e of numbered) {
    if (e.kind === 'record' && !rejected.has(e.n)) records.push([e.n, e.line, e.fields]);
    else if (e.kind === 'record' || !rejected.has(e.n)) {
      throw new SourceChangedError(
        `chunk ${msg.chunk}: record ${e.n} (line ${e.line}) was ${rejected.has(e.n) ? 'rejected' : 'accepted'} by the split and ${e.kind === 'record' ? 'accepted' : 'rejected'} here`,
      );
    }
  }
  return records;
}

/** A chunk's part object: its meta (site, token, counts, failures) and its prebuilt zip entries. */
function chunkPart(
  job: Job,
  msg: ChunkMessage,
  succeeded: number,
  failures: RecordFailure[],
  entries?: LocalEntries,
): ProcessedChunk {
  const meta = {
    v: 3 as const,
    site: job.site,
    token: job.token,
    chunk: msg.chunk,
    first: msg.n,
    records: msg.records,
    succeeded,
    failed: failures.length,
    entries: entries?.count ?? 0,
    failures,
  };
  return {
    part: encodePart(meta, entries?.bytes() ?? Buffer.alloc(0)),
    succeeded,
    failed: failures.length,
  };
}

/**
 * The part of a chunk given up on: every record it holds (rejected ones excepted) failed with `error`, as
 * CHUNK_FAILED (a poison chunk) or SOURCE_CHANGED (its bytes are not the ones the split validated).
 */
export async function failedChunk(
  deps: PipelineDeps,
  job: Job,
  msg: ChunkMessage,
  error: string,
  code: Extract<RecordErrorCode, 'CHUNK_FAILED' | 'SOURCE_CHANGED'> = 'CHUNK_FAILED',
): Promise<ProcessedChunk> {
  let failures: RecordFailure[];
  const rejected = await splitRejected(job, deps.objects);
  try {
    if (code === 'SOURCE_CHANGED') throw new SourceChangedError(error);
    const rows = await chunkRecords(job, msg, deps.objects, deps.limits.maxRecordBytes, rejected);
    failures = rows.map(([n, line, fields]) => ({
      n,
      line,
      code,
      message: error,
      raw: recordToRaw(fields, job.delimiter),
    }));
  } catch {
    // The range itself cannot be read (or is not the split's): the numbers are known, the lines only for the
    // first record.
    failures = [];
    for (let n = msg.n; n < msg.n + msg.records; n++) {
      if (!rejected.has(n))
        failures.push({ n, line: n === msg.n ? msg.line : 0, code, message: error, raw: '' });
    }
  }
  return chunkPart(job, msg, 0, failures);
}

/** Runs the processor over one chunk's records and builds its part object (zip entries, counts, failures). */
export async function processChunk(
  job: Job,
  msg: ChunkMessage,
  records: readonly [number, number, string[]][],
  processor: RowProcessor,
): Promise<ProcessedChunk> {
  const ctx = { site: job.site, token: job.token, header: job.header ?? [] };
  const entries = new LocalEntries(dosDateTime(new Date(job.receivedAt)));
  const failures: RecordFailure[] = [];
  let succeeded = 0;
  for (const [n, line, fields] of records) {
    for (let attempt = 1; ; attempt++) {
      try {
        // Await only what is a promise: a microtask per record is measurable at a million records.
        const result = processor.process({ n, line, fields }, ctx);
        const outputs = result instanceof Promise ? await result : result;
        for (const o of outputs) entries.add(o.name, o.data);
        succeeded++;
        break;
      } catch (err) {
        if (attempt < RECORD_ATTEMPTS) {
          await sleep(RECORD_RETRY_BASE_MS * 2 ** (attempt - 1));
          continue;
        }
        failures.push({
          n,
          line,
          code: 'PROCESSING_FAILED',
          message: errorMessage(err),
          raw: recordToRaw(fields, job.delimiter),
        });
        break;
      }
    }
  }
  return chunkPart(job, msg, succeeded, failures, entries);
}
