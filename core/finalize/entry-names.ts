import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import { namedRecords, type PartMeta, type RecordFailure } from '../messages/part.ts';
import { recordToRaw } from '../source/csv.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { scanRecordBatches } from '../source/scan.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';

/**
 * Zip entry names across chunks. A worker refuses a name an earlier record of its own chunk took
 * (process-chunk.ts, ZIP_ENTRY_NAME); a name taken by records of two chunks is found here, from the name hashes
 * each part's meta carries (PartMeta.names), in the finalize's first pass: no part is read twice. In chunk order,
 * the first record to take a name keeps it; a later record taking any name already taken fails with
 * ZIP_ENTRY_NAME, none of its entries go into the zip, and it counts as failed instead of succeeded.
 */
export interface NamesTakenElsewhere {
  /** Per chunk number, the indices of the part's entries to leave out of the zip. */
  readonly skip: ReadonlyMap<number, ReadonlySet<number>>;
  /** The records refused (line and raw text read again from the source when it can be). */
  readonly failures: RecordFailure[];
}

/** Finds the records whose outputs take a name a record of an earlier chunk took (`metas` in chunk order). */
export function namesTakenElsewhere(metas: readonly PartMeta[]): NamesTakenElsewhere {
  /** Name hash → the record that took it. */
  const taken = new Map<string, number>();
  const skip = new Map<number, Set<number>>();
  const failures: RecordFailure[] = [];
  for (const m of metas) {
    let entry = 0;
    for (const r of namedRecords(m.names)) {
      const first = r.hashes.map((h) => taken.get(h)).find((n) => n !== undefined);
      if (first === undefined) for (const h of r.hashes) taken.set(h, r.n);
      else {
        const s = skip.get(m.chunk) ?? new Set<number>();
        for (let i = 0; i < r.hashes.length; i++) s.add(entry + i);
        skip.set(m.chunk, s);
        failures.push({
          n: r.n,
          line: r.line,
          code: 'ZIP_ENTRY_NAME',
          message: `an output's name is the name of an output of record ${first} (another chunk): none of this record's outputs are in the zip`,
          raw: '',
        });
      }
      entry += r.hashes.length;
    }
  }
  return { skip, failures };
}

/** The raw text of `failures`' records, read again from the job's validated source (left empty if it cannot be). */
export async function withRawText(
  deps: PipelineDeps,
  job: Job,
  failures: RecordFailure[],
): Promise<RecordFailure[]> {
  if (failures.length === 0) return failures;
  const byN = new Map(failures.map((f) => [f.n, f]));
  try {
    const utf8 = decodeToUtf8(await deps.objects.stream(job.sourceKey));
    const opts = { maxRecordBytes: deps.limits.maxRecordBytes, withFields: true };
    for await (const batch of scanRecordBatches(utf8, opts)) {
      for (const ev of batch) {
        if (ev.kind !== 'record') continue;
        const f = byN.get(ev.n);
        if (f) byN.set(ev.n, { ...f, raw: recordToRaw(ev.fields ?? [], job.delimiter) });
      }
    }
  } catch (err) {
    jobLogger(job.site, job.token).warn('records refused for their entry names listed without their text', {
      error: errorMessage(err),
    });
  }
  return [...byN.values()];
}
