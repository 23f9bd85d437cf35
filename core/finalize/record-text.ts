import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import type { RecordFailure } from '../messages/part.ts';
import { recordToRaw } from '../source/csv.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { scanRecordBatches } from '../source/scan.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';

/**
 * `failures` with the line and raw text of their records, read again from the job's validated source (the same
 * decoder and scanner as the split, so the same numbering): for records the finalize lists without a part's line
 * (a stopped job's uncounted records, records refused for their entry names). If the source cannot be read they
 * keep what they had (line 0, no text) rather than not being listed at all.
 */
export async function withRecordText(
  deps: Pick<PipelineDeps, 'objects' | 'limits'>,
  job: Job,
  failures: readonly RecordFailure[],
): Promise<RecordFailure[]> {
  if (failures.length === 0) return [...failures];
  const byN = new Map(failures.map((f) => [f.n, f]));
  try {
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
