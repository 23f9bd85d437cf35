import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import type { RecordFailure } from '../messages/part.ts';
import { recordToRaw } from '../source/csv.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { scanRecordBatches } from '../source/scan.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { chunkPlan, chunkRanges } from './sheet-from-parts.ts';
import type { ChunkMessage } from '../messages/chunk.ts';

/**
 * `failures` with the line and raw text of their records, read again from the job's validated source (the same
 * decoder and scanner as the split, so the same numbering): for records the finalize lists without a part's line
 * (a stopped job's uncounted records, records refused for their entry names). Only the ranges of the split's
 * chunks that hold them are read (its chunk plan), the whole source only for a job split before the plan was kept.
 * If the source cannot be read they keep what they had (line 0, no text) rather than not being listed at all.
 */
export async function withRecordText(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Job,
  failures: readonly RecordFailure[],
): Promise<RecordFailure[]> {
  if (failures.length === 0) return [...failures];
  const byN = new Map(failures.map((f) => [f.n, f]));
  try {
    if (await fromChunks(deps, job, byN)) return [...byN.values()];
    const utf8 = decodeToUtf8(await deps.objects.stream(job.sourceKey));
    const opts = { maxRecordBytes: deps.limits.maxRecordBytes, withFields: true };
    for await (const batch of scanRecordBatches(utf8, opts)) {
      for (const ev of batch) {
        if (ev.kind !== 'record') continue;
        const f = byN.get(ev.n);
        if (f) byN.set(ev.n, { ...f, line: ev.line, raw: recordToRaw(ev.fields ?? [], job.delimiter) });
      }
    }
  } catch (err) {
    jobLogger(job.site, job.token).warn(
      'records listed without their lines and text: the source could not be read',
      {
        error: errorMessage(err),
      },
    );
  }
  return [...byN.values()];
}

/**
 * `byN` given its records' lines and text from the ranges of the chunks of the split's plan that hold them; false
 * (nothing changed) when the job has no plan or a record is in none of its chunks.
 */
async function fromChunks(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Job,
  byN: Map<number, RecordFailure>,
): Promise<boolean> {
  const plan = await chunkPlan(deps, job);
  if (!plan) return false;
  // Both in record order: each chunk takes the records of its range; a record before a chunk is in none.
  const ns = [...byN.keys()].sort((x, y) => x - y);
  const chunks: ChunkMessage[] = [];
  let i = 0;
  for (const m of [...plan.values()].sort((x, y) => x.n - y.n)) {
    if (i < ns.length && ns[i]! < m.n) return false;
    const from = i;
    while (i < ns.length && ns[i]! < m.n + m.records) i++;
    if (i > from) chunks.push(m);
  }
  if (i < ns.length) return false;
  const found = new Map<number, RecordFailure>();
  for await (const events of chunkRanges(deps, job, chunks)) {
    for (const ev of events) {
      const f = ev.kind === 'record' ? byN.get(ev.n) : undefined;
      if (f && ev.kind === 'record')
        found.set(ev.n, { ...f, line: ev.line, raw: recordToRaw(ev.fields, job.delimiter) });
    }
  }
  for (const [n, f] of found) byN.set(n, f);
  return true;
}
