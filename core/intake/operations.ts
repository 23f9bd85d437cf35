import { loadConfig } from '../../config/index.ts';
import { BadRequestError } from '../shared/errors.ts';
import { jobCounts, type Job, type ListedJob } from '../jobs/store.ts';
import { attemptsOf, RETRYABLE_FROM } from '../jobs/attempts.ts';
import { keys, newJobToken, parseSourceKey } from '../jobs/keys.ts';
import { jobLogger, logger } from '../shared/log.ts';
import type { PipelineDeps } from '../deps.ts';
import { DEFAULT_PROCESSOR, processorInfo } from '../processors/index.ts';
import { splitJob, type SplitDeps } from '../split/split.ts';
import { isTerminal } from '../jobs/states.ts';
import { grantWorkers, isGrantPassRequest } from '../budget/grant-workers.ts';
import { parseJobRequest, type JobRequest } from './request.ts';
import { newJobTraceparent } from '../shared/trace.ts';
import type { JobView } from './wire.ts';
import { siteJob } from './site-job.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { JobView };

export const DOWNLOAD_URL_SECONDS = 3600;

/** A job's view; a listed job (its listing's fields only) is enough. */
export async function jobView(deps: Pick<PipelineDeps, 'objects'>, job: ListedJob): Promise<JobView> {
  const rows = jobCounts(job);
  const view: JobView = {
    token: job.token,
    site: job.site,
    state: job.state,
    fileName: job.fileName,
    office: job.office,
    processor: job.processor,
    encoding: job.encoding,
    rows,
    progress: {
      done: job.succeeded + job.failed + (job.rejected ?? 0),
      total: job.totalRecords,
      chunksDone: job.chunksDone,
      totalChunks: job.totalChunks,
    },
    error: job.error,
    receivedAt: job.receivedAt,
    finishedAt: job.finishedAt,
    ...(job.retryOf ? { retryOf: job.retryOf } : {}),
    attempts: attemptsOf(job).map(({ before: _before, trace: _trace, ...a }) => a),
    retryable: retryableNow(job),
  };
  if (job.resultKey && isTerminal(job.state)) {
    const url = await deps.objects.presignGet(job.resultKey, DOWNLOAD_URL_SECONDS, `${job.token}.zip`);
    return { ...view, download: { url, expiresInSeconds: DOWNLOAD_URL_SECONDS, bytes: job.resultBytes } };
  }
  return view;
}

/** Records a retry may run now (core/jobs/attempts.ts): known once the job's latest attempt is finalized. */
export function retryableNow(job: Pick<Job, 'state' | 'retryable'>): number {
  return RETRYABLE_FROM.includes(job.state) ? (job.retryable ?? 0) : 0;
}

/** A job request checked against the site and the deployment, with its defaults and its worker options. */
export interface ValidatedRequest extends JobRequest {
  readonly processor: string;
  readonly office: string;
  /** Options passed to the workers (the simulation switches, concurrency, the processor's own options). */
  readonly options: Record<string, string>;
}

/**
 * The rules of a job request beyond its shape (request.ts): the processor is installed and accepts the job
 * (its `checkJob`, e.g. `mail`'s template is one of the site's), the office is one of the site's (default: its
 * first).
 */
export async function validated(site: string, req: JobRequest): Promise<ValidatedRequest> {
  const processor = req.processor ?? DEFAULT_PROCESSOR;
  // What the processor declares (a user's from its manifest: this process never runs a user's module).
  const p = await processorInfo(processor);
  if (req.template !== undefined && !p.takesTemplate) {
    throw new BadRequestError(
      'TEMPLATE_NOT_TAKEN',
      `Processor "${processor}" takes no template: \`template\` is an option of the processors that fill one (mail).`,
    );
  }
  // Stryker disable next-line ArrayDeclaration: an element without an id is no office either: the same UNKNOWN_OFFICE, the same message
  const offices = loadConfig().sites.find((s) => s.id === site)?.offices ?? [];
  const office = req.office ?? offices[0]?.id;
  if (!office || !offices.some((o) => o.id === office)) {
    throw new BadRequestError(
      'UNKNOWN_OFFICE',
      `Unknown office "${req.office ?? ''}" for site ${site}. Offices: ${offices.map((o) => o.id).join(', ')}.`,
    );
  }
  const { simulateDelayMs: delay, simulateErrorRate: rate, concurrency, template, maxFailureRate } = req;
  const options = {
    ...(delay ? { simulateDelayMs: String(delay) } : {}),
    ...(rate ? { simulateErrorRate: String(rate) } : {}),
    ...(concurrency ? { concurrency: String(concurrency) } : {}),
    ...(template ? { template } : {}),
    ...(maxFailureRate !== undefined ? { maxFailureRate: String(maxFailureRate) } : {}),
  };
  await p.checkJob?.({ site, options });
  return { ...req, processor, office, options };
}

/** A new job record (RECEIVED) in the site's partition, for a validated request. */
export async function createJob(
  deps: Pick<PipelineDeps, 'jobs' | 'limits'>,
  site: string,
  r: ValidatedRequest,
  upload: Job['upload'],
  extra: Partial<Pick<Job, 'sourceBytes' | 'options' | 'retryOf'>>,
): Promise<{ token: string; sourceKey: string }> {
  const token = newJobToken();
  const sourceKey = keys.source(site, token);
  await deps.jobs.create(
    {
      site,
      token,
      upload,
      office: r.office,
      processor: r.processor,
      fileName: r.fileName,
      sourceKey,
      receivedAt: new Date().toISOString(),
      options: r.options,
      // The job's trace starts here: every later span of the job, in any process, hangs from this context.
      trace: newJobTraceparent(),
      ...extra,
    },
    deps.limits.retentionDays,
  );
  return { token, sourceKey };
}

/** POST /jobs: the CSV in the request body (options in `input`, see request.ts); stored, then split inline. */
export async function startDirectJob(
  deps: SplitDeps,
  site: string,
  body: Buffer,
  input: unknown,
): Promise<JobView> {
  const r = await validated(site, parseJobRequest(input));
  refuseTooLarge(deps, body);
  const { token, sourceKey } = await createJob(deps, site, r, 'direct', { sourceBytes: body.length });
  await deps.objects.put(sourceKey, body, 'text/csv');
  await splitJob(deps, site, token, { workers: r.workers });
  return getJobView(deps, site, token);
}

/** A body above the direct-upload limit: 413, naming the presigned route (POST /jobs, and its check). */
export function refuseTooLarge(deps: Pick<PipelineDeps, 'limits'>, body: Buffer): void {
  if (body.length <= deps.limits.directUploadMaxBytes) return;
  throw new BadRequestError(
    'PAYLOAD_TOO_LARGE',
    `The file is ${body.length} bytes; POST /jobs takes up to ${deps.limits.directUploadMaxBytes}. Use POST /uploads for a presigned S3 upload (up to ${deps.limits.presignedUploadMaxBytes} bytes).`,
    413,
  );
}

/** POST /uploads: a job waiting for its file, and a presigned POST for exactly its source key. */
export async function startPresignedJob(
  deps: Pick<PipelineDeps, 'jobs' | 'limits' | 'objects' | 'timings'>,
  site: string,
  input: unknown,
) {
  const r = await validated(site, parseJobRequest(input));
  // The split runs later, on the S3 event: the requested worker count waits in the job's options.
  const { token, sourceKey } = await createJob(deps, site, r, 'presigned', {
    options: { ...r.options, ...(r.workers ? { workers: String(r.workers) } : {}) },
  });
  const upload = await deps.objects.presignPost(
    sourceKey,
    deps.limits.presignedUploadMaxBytes,
    deps.timings.uploadFormSeconds,
  );
  return {
    token,
    site,
    state: 'RECEIVED' as const,
    upload: {
      ...upload,
      maxBytes: deps.limits.presignedUploadMaxBytes,
      expiresInSeconds: deps.timings.uploadFormSeconds,
    },
  };
}

/**
 * A message of the upload-events queue: an S3 event notification (a presigned upload arrived: split it) or a
 * grant-pass request (a worker left or a job ended: grant the freed places).
 */
export async function onUploadEvent(deps: SplitDeps, body: string): Promise<void> {
  if (isGrantPassRequest(body)) {
    await grantWorkers(deps, 'request');
    return;
  }
  for (const key of uploadedSourceKeys(body)) await splitUploaded(deps, key);
}

/**
 * The object keys an S3 event notification (the body of an upload-events message) names, decoded. S3's test
 * event (sent when the notification is configured) names none.
 */
export function uploadedSourceKeys(body: string): string[] {
  const event = JSON.parse(body) as { Records?: { s3?: { object?: { key?: string } } }[] };
  return (event.Records ?? []).flatMap((r) => {
    const key = r.s3?.object?.key;
    // S3 URL-encodes keys in notifications, with '+' for a space.
    return key === undefined ? [] : [decodeURIComponent(key.replace(/\+/g, ' '))];
  });
}

/** The S3 event of a presigned upload: split the job whose source key this is (any other key is ignored). */
export async function splitUploaded(deps: SplitDeps, key: string) {
  const ids = parseSourceKey(key);
  if (!ids) {
    logger.warn('ignored object outside uploads/<site>/<token>/source.csv', { key });
    return { state: 'SKIPPED' as const };
  }
  const job = await deps.jobs.get(ids.site, ids.token);
  // Direct uploads are split inline; their S3 event must not start a second split.
  if (!job || job.upload !== 'presigned') return { state: 'SKIPPED' as const };
  const workers = job.options?.workers ? Number(job.options.workers) : undefined;
  const r = await splitJob(deps, ids.site, ids.token, { workers });
  jobLogger(ids.site, ids.token).info('split from S3 event', { state: r.state });
  return r;
}

export async function getJobView(
  deps: Pick<PipelineDeps, 'budget' | 'grants' | 'jobs' | 'objects'>,
  site: string,
  token: string,
): Promise<JobView> {
  const job = await siteJob(deps, site, token);
  const view = await jobView(deps, job);
  if (job.state !== 'QUEUED' && job.state !== 'RUNNING') return view;
  return { ...view, workers: await deps.grants.status(deps.budget, site, token) };
}
