/** The part builder: a chunk's part object (meta, failures, zip entries), processed or given up. */
import pMap from 'p-map';
import { rangeNumbers, runsRecord, type ChunkMessage } from '../messages/chunk.ts';
import { recordToRaw } from '../source/csv.ts';
import { SourceChangedError, type RecordErrorCode } from '../shared/errors.ts';
import type { PipelineDeps } from '../deps.ts';
import type { RowOutput } from '../processors/types.ts';
import { encodePart, NAME_HASH_CHARS, writeNameHash, type RecordFailure } from '../messages/part.ts';
import { withRoom, writeUint } from '../shared/bytes.ts';
import { dosDateTime, entryNameProblem, LocalEntries } from '../messages/zip.ts';
import { echoed } from '../shared/own.ts';
import type { Job, NameHashKind } from '../jobs/store.ts';
import { claimOutcome, type EffectClaims } from '../effects/claims.ts';
import { chunkRecords, splitRejected } from './chunk-records.ts';
import { SheetRows, writesSheetRows } from './sheet-rows.ts';
import { shownOutputs } from '../messages/results-row.ts';
import type { RejectedRecord } from '../source/csv.ts';

/** A chunk's result: its part object (zip entries, counts, failures) and its counts. */
export interface ProcessedChunk {
  readonly part: Buffer;
  readonly succeeded: number;
  readonly failed: number;
}

/**
 * A chunk's zip entries, each record's outputs checked before they go in ({@link entryNameProblem}, and no name
 * an earlier record of the chunk took): a record with one bad name puts none of its outputs in the zip and fails
 * with ZIP_ENTRY_NAME (its side effect, if it has one, did happen: the code is final, never run again).
 */
export class ChunkEntries {
  private readonly taken = new Set<string>();
  /**
   * The part meta's `names` (what the finalize checks across chunks), as ASCII bytes: a string built record by
   * record was a rope of several strings a record, all kept until the part is written — old-space garbage.
   */
  private names: Buffer = Buffer.allocUnsafe(0);
  private namesUsed = 0;

  constructor(
    readonly entries: LocalEntries,
    /** The job's name hash (Job.nameHash). */
    readonly nameHash?: NameHashKind,
  ) {}

  /** The names of the entries added, as the part's meta keeps them (PartMeta.names). */
  get summary(): string | undefined {
    return this.namesUsed > 0 ? this.names.toString('latin1', 0, this.namesUsed) : undefined;
  }

  /** Adds record `n`'s outputs, or answers why they cannot go into the zip (then nothing is added). */
  add(n: number, line: number, outputs: readonly RowOutput[]): string | undefined {
    if (outputs.length === 1) return this.addOne(n, line, outputs[0]!);
    // A record's own names are checked against each other only when it has several (a set per record is
    // measurable at a million records of one output each).
    const names = outputs.length > 1 ? new Set<string>() : undefined;
    for (const o of outputs) {
      const problem =
        entryNameProblem(o.name) ??
        (this.taken.has(o.name) || names?.has(o.name)
          ? 'an earlier record of the chunk took the name'
          : undefined);
      if (problem) return `output "${echoed(o.name)}" cannot be an entry of the zip: ${problem}`;
      names?.add(o.name);
    }
    if (outputs.length === 0) return undefined;
    let at = this.named(n, line, outputs.length);
    for (const o of outputs) {
      this.entries.add(o.name, o.data);
      this.taken.add(o.name);
      at += writeNameHash(this.names, at, o.name, this.nameHash);
    }
    this.namesUsed = at;
    return undefined;
  }

  /**
   * {@link add} for a record of one output (most records of most processors): the same checks and bytes, with
   * one lookup in `taken` — adding its name leaves the set as it was when an earlier record took it.
   */
  private addOne(n: number, line: number, o: RowOutput): string | undefined {
    const name = o.name;
    let problem = entryNameProblem(name);
    if (problem === undefined) {
      const before = this.taken.size;
      if (this.taken.add(name).size === before) problem = 'an earlier record of the chunk took the name';
    }
    if (problem) return `output "${echoed(name)}" cannot be an entry of the zip: ${problem}`;
    this.entries.add(name, o.data);
    const at = this.named(n, line, 1);
    this.namesUsed = at + writeNameHash(this.names, at, name, this.nameHash);
    return undefined;
  }

  /** Writes a record's `<n>:<line>:` into `names` (after a space but for the first), with room for its hashes. */
  private named(n: number, line: number, outputs: number): number {
    const room = 1 + 2 * NUMBER_ROOM + 2 + outputs * NAME_HASH_CHARS;
    this.names = withRoom(this.names, this.namesUsed, room, 16 * 1024);
    const b = this.names;
    let at = this.namesUsed;
    if (at > 0) b[at++] = 0x20;
    at += writeUint(b, n, at);
    b[at++] = 0x3a;
    at += writeUint(b, line, at);
    b[at++] = 0x3a;
    return at;
  }
}

/** The most characters `String(v)` takes for a number (`-1.2345678901234567e-300`). */
const NUMBER_ROOM = 24;

export const ZIP_ENTRY_NAME: RecordErrorCode = 'ZIP_ENTRY_NAME';

/**
 * What a worker's parts have taken a record so far (zip entries, results.csv rows): a chunk's buffers are made that
 * large at once (1/8 more), so they are not grown as its records come out. Each growth copies what a buffer holds,
 * and a part's rows appended after its entries grew the entries' buffer once more: at 200,000 `json` records, 5.1 MiB
 * copied a chunk of 10,000 (scripts/bench-chunk.ts, docs/performance.md).
 */
export class PartSizes {
  private records = 0;
  private entries = 0;
  private rows = 0;

  /** Bytes to make room for at once, for `records` records' entries and rows; undefined before any part. */
  room(records: number): { entries: number; rows: number } | undefined {
    if (this.records === 0) return undefined;
    const per = (bytes: number) => Math.ceil(((bytes / this.records) * records * 9) / 8);
    return { entries: per(this.entries), rows: per(this.rows) };
  }

  /** A part's records, its entries' bytes and its rows' bytes. */
  add(records: number, entries: number, rows: number): void {
    if (records <= 0) return;
    this.records += records;
    this.entries += entries;
    this.rows += rows;
  }
}

/** A chunk's part object: its meta (site, token, counts, failures) and its prebuilt zip entries. */
export function chunkPart(
  job: Job,
  msg: ChunkMessage,
  succeeded: number,
  failures: RecordFailure[],
  entries?: ChunkEntries,
  /** Its rows of results.csv (core/work/sheet-rows.ts), when it carries them. */
  sheet?: Buffer,
): ProcessedChunk {
  const names = entries?.summary;
  const meta = {
    v: 3 as const,
    site: job.site,
    token: job.token,
    chunk: msg.chunk,
    first: msg.n,
    // The numbers the part's records span (a resubmitted range's are not consecutive: from its first to its last).
    records: msg.numbered ? (msg.run?.at(-1)?.[1] ?? msg.n) - msg.n + 1 : msg.records,
    succeeded,
    failed: failures.length,
    entries: entries?.entries.count ?? 0,
    failures,
    ...(names ? { names, ...(entries?.nameHash ? { nameHash: entries.nameHash } : {}) } : {}),
  };
  return {
    part: encodePart(meta, entries?.entries ?? Buffer.alloc(0), sheet),
    succeeded,
    failed: failures.length,
  };
}

/**
 * The part of a chunk given up on: every record it holds (rejected ones excepted) failed with `error`, as
 * CHUNK_FAILED (a poison chunk) or SOURCE_CHANGED (its bytes are not the ones the split validated). For a
 * processor with side effects (`claims` given), what the claims know wins (effects.ts `claimOutcome`): a record
 * done before is replayed, one that failed keeps its code, one claimed without an outcome is IN_DOUBT — never
 * CHUNK_FAILED, which `rowfleet retry` would run again.
 */
export async function failedChunk(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Job,
  msg: ChunkMessage,
  error: string,
  code: Extract<RecordErrorCode, 'CHUNK_FAILED' | 'SOURCE_CHANGED'> = 'CHUNK_FAILED',
  claims?: Pick<EffectClaims, 'get'>,
): Promise<ProcessedChunk> {
  let failures: RecordFailure[];
  // The records as read, when the range reads: the part's rows of results.csv are written from them.
  let rows: [number, number, string[]][] | undefined;
  const rangeRejected: RejectedRecord[] = [];
  const rejected = await splitRejected(job, deps.objects);
  try {
    if (code === 'SOURCE_CHANGED') throw new SourceChangedError(error);
    rows = await chunkRecords(job, msg, deps.objects, deps.limits.maxRecordBytes, rejected, rangeRejected);
    failures = rows.map(([n, line, fields]) => ({
      n,
      line,
      code,
      message: error,
      raw: recordToRaw(fields, job.delimiter),
    }));
  } catch {
    // The range itself cannot be read (or is not the split's): the numbers are known, the lines only for the
    // first record (and the part has no rows: the finalize reads the source for them).
    rows = undefined;
    failures = [];
    // A resubmitted range runs exactly its `run` (the split's rejections included, corrected).
    const numbers = msg.numbered
      ? rangeNumbers(msg.run ?? [])
      : Array.from({ length: msg.records }, (_, k) => msg.n + k).filter(
          (n) => !rejected.has(n) && runsRecord(msg, n),
        );
    for (const n of numbers)
      failures.push({ n, line: n === msg.n ? msg.line : 0, code, message: error, raw: '' });
  }
  const sheet =
    rows && writesSheetRows(msg, rows.length, rangeRejected) ? new SheetRows(job, rangeRejected) : undefined;
  // failures[i] is rows[i]'s whenever there is a sheet.
  const fieldsOf = (i: number) => rows![i]![2];
  if (!claims) {
    failures.forEach((f, i) => sheet?.add(fieldsOf(i), { n: f.n, line: f.line, failure: f, output: '' }));
    return chunkPart(job, msg, 0, failures, undefined, sheet?.bytes());
  }
  const found = await pMap(failures, (f) => claims.get(job.site, job.token, f.n), {
    concurrency: CLAIM_READS_IN_FLIGHT,
  });
  const entries = new LocalEntries(dosDateTime(new Date(job.receivedAt)));
  const named = new ChunkEntries(entries, job.nameHash);
  const left: RecordFailure[] = [];
  let succeeded = 0;
  const fail = (i: number, f: RecordFailure) => {
    left.push(f);
    sheet?.add(fieldsOf(i), { n: f.n, line: f.line, failure: f, output: '' });
  };
  failures.forEach((f, i) => {
    const r = claimOutcome(found[i]);
    if (!r) fail(i, f);
    else if ('outputs' in r) {
      const at = entries.bytes().length;
      const problem = named.add(f.n, f.line, r.outputs);
      if (problem) return fail(i, { ...f, code: ZIP_ENTRY_NAME, message: problem });
      succeeded++;
      const output = r.outputs.length > 0 ? shownOutputs(entries.bytes(), at, r.outputs.length).shown : '';
      sheet?.add(fieldsOf(i), { n: f.n, line: f.line, output });
    } else fail(i, { ...f, code: r.code, message: r.message });
  });
  return chunkPart(job, msg, succeeded, left, named, sheet?.bytes());
}

/** Claims read at once when a chunk with side effects is given up. */
const CLAIM_READS_IN_FLIGHT = 16;
