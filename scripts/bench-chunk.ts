/**
 * The workers' record CPU alone, in one process: the bench's sample CSV (UTF-8, json processor) split into chunks
 * as the split cuts them, each chunk's range read back as a worker reads it (chunkRecords) and run through
 * processChunk with its sheet rows — no S3, no queue, no other process. Prints one JSON line: CPU µs per record
 * (process.cpuUsage around processChunk only, GC threads included) and the sha256 of every part's bytes in chunk
 * order, so a change to the workers' code can be timed and its parts checked byte for byte against the code before.
 *
 *   node --import tsx scripts/bench-chunk.ts [--records 200000] [--rounds 1] [--dir $TMPDIR/rowfleet-bench]
 *     [--against out/bench-against]
 *
 * `--rounds R` runs every chunk R times (the hash is of the first round; µs per record of each round: the first
 * includes V8's warm-up, as a worker's first chunks do). `--against DIR` also runs another copy of the code (DIR
 * holds its core/ and config/, e.g. `mkdir -p out/bench-against && git archive main core config | tar -x -C out/bench-against`),
 * chunk by chunk in turn with this one (which goes first alternates), in the same process: on a shared machine
 * the two runs' figures move together, where two processes' differ by ±25 %. An A/A run (DIR a copy of this
 * code) read this copy's CPU at 1.02 of DIR's, three runs alike: a ratio closer to 1 than that is no difference.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { getStage } from '../config/index.ts';
import { writeSampleCsv } from '../cli/gen-data.ts';
import { decodeToUtf8 } from '../core/source/decode.ts';
import { scanRecordBatches } from '../core/source/scan.ts';
import { Chunker, type ChunkMessage } from '../core/messages/chunk.ts';
import { recordConcurrency } from '../core/processors/settings.ts';
import type { Objects } from '../core/aws/objects.ts';
import { NAME_HASH, type Job } from '../core/jobs/store.ts';
import type { RejectedRecord } from '../core/source/csv.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '1' },
    dir: { type: 'string' },
    against: { type: 'string' },
  },
});
const records = Number(values.records);
const rounds = Number(values.rounds);
const dir = values.dir ?? join(tmpdir(), 'rowfleet-bench');
const file = join(dir, `records-${records}.csv`);
await mkdir(dir, { recursive: true });
if (!existsSync(file)) await writeSampleCsv(file, records);
const bytes = readFileSync(file);

// The chunks as the split cuts them (the stage's caps: 10,000 records a chunk).
const { limits } = getStage('local');
const token = '0f8fad5b-d9cb-469f-a165-70867728950e';
const msgs: ChunkMessage[] = [];
let header: string[] = [];
let chunker: Chunker | undefined;
const scan = scanRecordBatches(decodeToUtf8(createReadStream(file)), {
  maxRecordBytes: limits.maxRecordBytes,
});
for await (const batch of scan) {
  for (const ev of batch) {
    if (ev.kind === 'header') {
      header = ev.header;
      chunker = new Chunker('bench', token, 'source.csv', ev, {
        maxBytes: limits.chunkMaxBytes,
        maxRecords: limits.chunkMaxRecords,
      });
    } else {
      const m = chunker!.add(ev);
      if (m) msgs.push(m);
    }
  }
}
const last = chunker?.flush();
if (last) msgs.push(last);

const job: Job = {
  site: 'bench',
  token,
  state: 'RUNNING',
  processor: 'json',
  sourceKey: 'source.csv',
  upload: 'direct',
  header,
  delimiter: ',',
  encoding: 'utf-8',
  chunksDone: 0,
  succeeded: 0,
  failed: 0,
  receivedAt: '2026-01-02T03:04:05.000Z',
  // As JobStore.create makes a job: its entry names hashed with the current hash.
  nameHash: NAME_HASH,
};
const objects = {
  bytes: (_key: string, r: { start: number; end: number }) =>
    Promise.resolve(bytes.subarray(r.start, r.end + 1)),
} as unknown as Objects;

/** One copy of the code under test: its processChunk, chunkRecords and json processor, and its figures. */
async function codeAt(root: string) {
  const { processChunk } = (await import(
    `${root}/core/work/process-chunk.ts`
  )) as typeof import('../core/work/process-chunk.ts');
  const { chunkRecords } = (await import(
    `${root}/core/work/chunk-records.ts`
  )) as typeof import('../core/work/chunk-records.ts');
  const { jsonProcessor } = (await import(
    `${root}/core/processors/json.ts`
  )) as typeof import('../core/processors/json.ts');
  const { RecordSlots } = (await import(
    `${root}/core/work/slots.ts`
  )) as typeof import('../core/work/slots.ts');
  const parts = (await import(`${root}/core/work/chunk-part.ts`)) as Partial<
    typeof import('../core/work/chunk-part.ts')
  >;
  // As a worker runs them: one set of slots for its chunks, its stop signal, and its parts' sizes so far (where the
  // copy has them).
  const run = {
    slots: new RecordSlots(recordConcurrency(jsonProcessor, {}, limits)),
    signal: new AbortController().signal,
    ...(parts.PartSizes ? { sizes: new parts.PartSizes() } : {}),
  };
  let cpu = 0;
  let done = 0;
  const hash = createHash('sha256');
  return {
    async chunk(msg: ChunkMessage, hashed: boolean) {
      const rejected: RejectedRecord[] = [];
      const rows = await chunkRecords(job, msg, objects, limits.maxRecordBytes, new Set(), rejected);
      const t = process.cpuUsage();
      const { part, succeeded, failed } = await processChunk(
        job,
        msg,
        rows,
        jsonProcessor,
        run,
        undefined,
        rejected,
      );
      const d = process.cpuUsage(t);
      cpu += d.user + d.system;
      done += succeeded + failed;
      if (hashed) hash.update(part);
    },
    /** µs per record since the last call. */
    round() {
      const us = Number((cpu / done).toFixed(3));
      cpu = done = 0;
      return us;
    },
    sha256: () => hash.digest('hex'),
  };
}

const here = join(import.meta.dirname, '..');
const codes = [await codeAt(here), ...(values.against ? [await codeAt(resolve(values.against))] : [])];
const usPerRecord: number[][] = codes.map(() => []);
for (let round = 0; round < rounds; round++) {
  for (const [c, msg] of msgs.entries()) {
    for (let k = 0; k < codes.length; k++)
      await codes[(c + round + k) % codes.length]!.chunk(msg, round === 0);
  }
  codes.forEach((code, k) => usPerRecord[k]!.push(code.round()));
}
const figures = (k: number) => ({ usPerRecord: usPerRecord[k], partsSha256: codes[k]!.sha256() });
process.stdout.write(
  JSON.stringify({
    records: msgs.reduce((s, m) => s + m.records, 0),
    chunks: msgs.length,
    ...figures(0),
    ...(values.against ? { against: figures(1) } : {}),
  }) + '\n',
);
