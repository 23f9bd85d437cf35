import { readRecordBatches } from '../source/csv.ts';
import { csvText } from '../source/write.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { BadRequestError, NotFoundError } from '../shared/errors.ts';
import { createJob, getJobView, validated, type JobView } from './api.ts';
import { isJobToken, keys } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { splitJob } from '../split/split.ts';
import { isTerminal } from '../jobs/states.ts';

/**
 * POST /jobs/{token}/retry (and `rowfleet retry`): re-runs only the records of a finished job that failed in
 * processing (PROCESSING_FAILED, CHUNK_FAILED) or were never processed because the job stopped early (CANCELLED,
 * STOPPED_EARLY) — core/jobs/stop.ts RETRIED_CODES — as a new job of the same site, office, processor and options,
 * linked to it by `retryOf`. The records are taken from the original upload (not from errors.csv, whose cells are
 * neutralised for spreadsheets); rejected records are not re-run — they would be rejected again — nor are records
 * whose outcome is unknown (IN_DOUBT) or that a processor refused with a code of its own. A job not finished, or
 * with none of those records, answers 409 NOTHING_TO_RETRY.
 */
export async function retryFailedRecords(deps: PipelineDeps, site: string, token: string): Promise<JobView> {
  if (!isJobToken(token)) throw new NotFoundError(`No job ${token}.`);
  const job = await deps.jobs.get(site, token);
  if (!job) throw new NotFoundError(`No job ${token}.`);
  const failedKey = keys.failed(site, token);
  if (!isTerminal(job.state) || job.failed === 0 || (await deps.objects.size(failedKey)) === undefined) {
    throw new BadRequestError(
      'NOTHING_TO_RETRY',
      `Job ${token} is ${job.state} with ${job.failed} failed records, none of which a retry runs again ` +
        '(processing failures and records never processed are; rejected, IN_DOUBT and refused ones are not).',
      409,
    );
  }
  const wanted = new Set<number>();
  const text = (await deps.objects.bytes(failedKey)).toString('utf8');
  for (const line of text.split('\n')) if (line) wanted.add((JSON.parse(line) as { n: number }).n);

  const rows: string[][] = [];
  let header: string[] = [];
  for await (const batch of readRecordBatches(decodeToUtf8(await deps.objects.stream(job.sourceKey)), {
    maxRecordBytes: deps.limits.maxRecordBytes,
  })) {
    for (const ev of batch) {
      if (ev.kind === 'header') header = ev.header;
      else if (ev.kind === 'record' && wanted.has(ev.n)) rows.push(ev.fields);
    }
  }
  const csv = Buffer.from(csvText([header, ...rows]), 'utf8');
  const r = await validated(site, { processor: job.processor, office: job.office, fileName: job.fileName });
  const { token: retryToken, sourceKey } = await createJob(
    deps,
    site,
    { ...r, options: job.options ?? {} },
    'direct',
    { sourceBytes: csv.length, retryOf: token },
  );
  await deps.objects.put(sourceKey, csv, 'text/csv');
  await splitJob(deps, site, retryToken);
  return getJobView(deps, site, retryToken);
}
