import { BadRequestError } from '../shared/errors.ts';
import type { PipelineDeps } from '../deps.ts';
import { currentAttempt } from '../jobs/attempts.ts';
import { resultsEncoding } from '../finalize/results-sheet.ts';
import { DOWNLOAD_URL_SECONDS } from './operations.ts';
import { siteJob } from './site-job.ts';

/** GET /jobs/{token}/results: where to download the job's latest results.csv. */
export interface ResultsDownload {
  /** A presigned GET URL of the file (it answers with `Content-Disposition: attachment`). */
  readonly url: string;
  /** The name the file downloads as. */
  readonly fileName: string;
  readonly expiresInSeconds: number;
  readonly bytes?: number;
  /** What the file is written in: the upload's CP932, or UTF-8 with a BOM (core/finalize/results-sheet.ts). */
  readonly encoding: 'cp932' | 'utf-8-bom';
  /** The attempt whose finalize wrote it (the job's latest finalized attempt: each merges those before). */
  readonly attempt: number;
}

/**
 * The job's latest results.csv, as a presigned URL of the object its latest finalize wrote beside the zip (the
 * same bytes as the zip's entry). While a new attempt runs, the sheet of the attempt before is the latest. A job
 * that has none yet (still in its first run, rejected, or finalized before the sheet was kept apart) is a 409.
 */
export async function resultsDownload(
  deps: Pick<PipelineDeps, 'jobs' | 'objects'>,
  site: string,
  token: string,
): Promise<ResultsDownload> {
  const job = await siteJob(deps, site, token);
  const key = job.resultsSheetKey;
  if (!key) {
    throw new BadRequestError(
      'NO_RESULTS',
      `Job ${token} is ${job.state} and has no results.csv of its own yet` +
        (job.resultKey ? ' (it was finalized before the sheet was kept apart: it is in the zip).' : '.'),
      409,
    );
  }
  // The attempt the sheet is of: the key names it (a<k>/), the first attempt's has none.
  const attempt = Number(/\/a(\d+)\/results\.csv$/.exec(key)?.[1] ?? 1);
  const fileName = `${token}-results.csv`;
  const url = await deps.objects.presignGet(key, DOWNLOAD_URL_SECONDS, fileName);
  return {
    url,
    fileName,
    expiresInSeconds: DOWNLOAD_URL_SECONDS,
    ...(job.resultsSheetBytes !== undefined ? { bytes: job.resultsSheetBytes } : {}),
    encoding: resultsEncoding(job),
    attempt: Math.min(attempt, currentAttempt(job)),
  };
}
