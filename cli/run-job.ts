import { createWriteStream, openAsBlob, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import type { JobView } from '../core/intake/operations.ts';
import type { CheckAnswer } from '../core/intake/check.ts';
import type { JobRequest } from '../core/intake/request.ts';
import { isTerminal } from '../core/jobs/states.ts';
import { errorMessage } from '../core/shared/errors.ts';

export interface RunOptions {
  readonly apiUrl: string;
  readonly apiToken: string;
  readonly file: string;
  readonly processor?: string;
  readonly office?: string;
  readonly workers?: number;
  readonly simulateDelayMs?: number;
  readonly simulateErrorRate?: number;
  /** Further job request fields (e.g. `concurrency`, `template`). */
  readonly request?: Partial<JobRequest>;
  readonly outDir: string;
  readonly directMaxBytes: number;
  /** Progress to stderr: a bar on a TTY, a line every few seconds otherwise, nothing when false. */
  readonly progress: boolean;
  /** Give up (NO_PROGRESS) when the job has not moved for this long. @default DEFAULT_STALL_SECONDS */
  readonly stallSeconds?: number;
  /**
   * Where the API is now, asked when it stops answering while a job is followed (the local runtime died: this
   * attaches again, which starts it again). Without it the same URL is tried until the stall timeout.
   */
  readonly reconnect?: () => Promise<string>;
}

export type FollowOptions = Pick<
  RunOptions,
  'apiUrl' | 'apiToken' | 'outDir' | 'progress' | 'stallSeconds' | 'reconnect'
>;

/** How long `run`, `retry`, `loadtest` and `smoke` wait for a job that makes no progress before giving up. */
export const DEFAULT_STALL_SECONDS = 120;

/** The likely cause of a job that stopped moving, by where it stands. */
export function stallCause(v: Pick<JobView, 'state' | 'progress'>): string {
  if (v.state === 'RECEIVED')
    return 'the split never started or never finished: for a presigned upload its S3 event did not arrive (is the bucket notification and the upload-events queue wired? locally: is the runtime up?)';
  if (v.state === 'RUNNING' && v.progress.chunksDone === 0)
    return 'no chunk was processed: no worker is running (the launch was refused — quota, capacity — and is being retried, or the workers die at start: see the worker logs)';
  if (v.state === 'RUNNING')
    return 'the workers stopped making progress (they died, or a chunk takes longer than expected); the reaper relaunches workers of stalled jobs';
  if (v.state === 'FINALIZING')
    return 'the finalize has not finished: it may have died (it is asked again once its lease ends), or the zip is very large';
  return `the job is ${v.state}`;
}

export interface RunSummary {
  token: string;
  site: string;
  state: string;
  rows: { total: number; succeeded: number; failed: number; rejected: number };
  /** When the API took the job (its view's `receivedAt`): how long a command took to get a job in, from outside. */
  receivedAt?: string;
  zip?: string;
  error?: { code: string; message: string };
  seconds: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(
  o: Pick<RunOptions, 'apiUrl' | 'apiToken'>,
  method: string,
  path: string,
  body?: Blob | string,
  type?: string,
): Promise<{ status: number; body: T }> {
  const res = await fetch(o.apiUrl + path, {
    method,
    headers: { authorization: `Bearer ${o.apiToken}`, ...(type ? { 'content-type': type } : {}) },
    body,
  });
  const text = await res.text();
  const parsed = (text ? JSON.parse(text) : {}) as T & { error?: { code: string; message: string } };
  if (res.status >= 400 && !(res.status === 422 && (parsed as { token?: string }).token)) {
    throw new ApiError(res.status, parsed.error?.code ?? `HTTP_${res.status}`, parsed.error?.message ?? text);
  }
  return { status: res.status, body: parsed };
}

/** The job request (core/intake/request.ts) the options make: the API checks it, locally and on AWS alike. */
function jobRequest(o: RunOptions): JobRequest {
  const r: JobRequest = {
    fileName: basename(o.file),
    processor: o.processor,
    office: o.office,
    workers: o.workers,
    simulateDelayMs: o.simulateDelayMs,
    simulateErrorRate: o.simulateErrorRate,
    ...o.request,
  };
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as JobRequest;
}

/** Starts the job through the API: the body of POST /jobs when small, a presigned S3 POST otherwise. */
export async function startJob(o: RunOptions): Promise<JobView> {
  const size = statSync(o.file).size;
  if (size <= o.directMaxBytes) {
    const body = await openAsBlob(o.file);
    const query = new URLSearchParams(
      Object.entries(jobRequest(o)).map(([k, v]): [string, string] => [k, String(v)]),
    );
    return (await call<JobView>(o, 'POST', `/jobs?${query}`, body, 'text/csv')).body;
  }
  const created = await call<{ token: string; upload: { url: string; fields: Record<string, string> } }>(
    o,
    'POST',
    '/uploads',
    JSON.stringify(jobRequest(o)),
    'application/json',
  );
  const form = new FormData();
  for (const [k, v] of Object.entries(created.body.upload.fields)) form.append(k, v);
  form.append('file', await openAsBlob(o.file), basename(o.file));
  const res = await fetch(created.body.upload.url, { method: 'POST', body: form });
  if (!res.ok) throw new ApiError(res.status, 'UPLOAD_FAILED', `S3 refused the upload: ${await res.text()}`);
  return (await call<JobView>(o, 'GET', `/jobs/${created.body.token}`)).body;
}

/**
 * Checks a file through the API (POST /jobs?check=true, the job request as `run` sends it): what the run would
 * find, its first records' outputs and an estimate; nothing is created. An API refusal throws ApiError.
 */
export async function checkFile(
  o: Pick<RunOptions, 'apiUrl' | 'apiToken' | 'file' | 'processor' | 'office' | 'workers' | 'request'> &
    Partial<Pick<RunOptions, 'simulateDelayMs' | 'simulateErrorRate'>>,
): Promise<CheckAnswer> {
  const body = await openAsBlob(o.file);
  const query = new URLSearchParams([
    ['check', 'true'],
    ...Object.entries(jobRequest({ outDir: '', directMaxBytes: 0, progress: false, ...o })).map(
      ([k, v]): [string, string] => [k, String(v)],
    ),
  ]);
  return (await call<CheckAnswer>(o, 'POST', `/jobs?${query}`, body, 'text/csv')).body;
}

function progressReporter(enabled: boolean) {
  if (!enabled) return { update: (_v: JobView) => {}, stop: () => {} };
  const started = Date.now();
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          ' {bar} {percentage}% | {value}/{total} records | {rate} rec/s | ETA {eta_formatted} | {state}',
        stream: process.stderr,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    let begun = false;
    return {
      update(v: JobView) {
        const total = v.progress.total ?? Math.max(v.progress.done, 1);
        const rate = Math.round(v.progress.done / Math.max(0.001, (Date.now() - started) / 1000));
        if (!begun) {
          bar.start(total, v.progress.done, { rate, state: v.state });
          begun = true;
        }
        bar.setTotal(total);
        bar.update(v.progress.done, { rate, state: v.state });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(v: JobView) {
      if (Date.now() - last < 2000 && !isTerminal(v.state)) return;
      last = Date.now();
      const secs = (Date.now() - started) / 1000;
      const rate = v.progress.done / Math.max(0.001, secs);
      const total = v.progress.total;
      const eta = total && rate > 0 ? Math.max(0, (total - v.progress.done) / rate).toFixed(0) + 's' : '?';
      process.stderr.write(
        `${v.state} ${v.progress.done}/${total ?? '?'} records, ${rate.toFixed(0)} rec/s, ETA ${eta}\n`,
      );
    },
    stop: () => {},
  };
}

/** Uploads a CSV, follows the job to its end, downloads the zip. */
export async function runJob(o: RunOptions): Promise<RunSummary> {
  const t0 = Date.now();
  let view: JobView;
  try {
    view = await startJob(o);
  } catch (err) {
    if (err instanceof ApiError) {
      return {
        token: '',
        site: '',
        state: err.status === 422 ? 'REJECTED' : 'FAILED',
        rows: { total: 0, succeeded: 0, failed: 0, rejected: 0 },
        error: { code: err.code, message: err.message },
        seconds: (Date.now() - t0) / 1000,
      };
    }
    throw err;
  }
  return followJob(o, view, t0);
}

/**
 * Starts the next attempt of a finished job through the API (POST /jobs/{token}/retry): the records a retry may
 * run, in the same job. Follows the job to the attempt's end and downloads the job's zip (merged over its
 * attempts). A job with nothing to retry answers ApiError NOTHING_TO_RETRY (409), one whose attempt is under way
 * ATTEMPT_RUNNING (409).
 */
export async function retryJob(o: FollowOptions, token: string): Promise<RunSummary & { attempt: number }> {
  const t0 = Date.now();
  const started = (await call<JobView>(o, 'POST', `/jobs/${encodeURIComponent(token)}/retry`)).body;
  const attempt = started.attempts.at(-1)?.n ?? 1;
  return { ...(await followJob(o, started, t0)), attempt };
}

/** What POST /jobs/{token}/resubmit answered (core/intake/resubmit.ts ResubmitAnswer). */
export interface ResubmitStart {
  readonly attempt: number;
  readonly run: number;
  readonly notRun: readonly { record: number; status: string; reason: string }[];
  readonly notRunCount: number;
  readonly job: JobView;
}

/**
 * Sends a corrected results.csv (or errors.csv) back (POST /jobs/{token}/resubmit): its records that did not
 * succeed run in the job's next attempt with the corrected values. `started` is called with the answer (the
 * attempt, what runs and what does not) before the job is followed to the attempt's end and its zip downloaded.
 * The API's refusals (RESUBMIT_HEADER_CHANGED, RESUBMIT_UNKNOWN_RECORDS 422; ATTEMPT_RUNNING, NOTHING_TO_RESUBMIT
 * 409) are ApiErrors.
 */
export async function resubmitJob(
  o: FollowOptions,
  token: string,
  file: string,
  started: (answer: ResubmitStart) => void = () => undefined,
): Promise<RunSummary & { attempt: number }> {
  const t0 = Date.now();
  const path = `/jobs/${encodeURIComponent(token)}/resubmit`;
  const answer = (await call<ResubmitStart>(o, 'POST', path, await openAsBlob(file), 'text/csv')).body;
  started(answer);
  return { ...(await followJob(o, answer.job, t0)), attempt: answer.attempt };
}

/** Downloads the job's latest results.csv (GET /jobs/{token}/results) to `file`; its absolute path. */
export async function downloadResults(
  o: Pick<RunOptions, 'apiUrl' | 'apiToken'>,
  token: string,
  file?: string,
): Promise<{ file: string; attempt: number; encoding: string }> {
  const r = (
    await call<{ url: string; fileName: string; attempt: number; encoding: string }>(
      o,
      'GET',
      `/jobs/${encodeURIComponent(token)}/results`,
    )
  ).body;
  return { file: await download(r.url, file ?? r.fileName), attempt: r.attempt, encoding: r.encoding };
}

/**
 * Follows a started job to its end (progress on stderr) and downloads its zip. An API that stops answering (its
 * runtime restarting) is waited for, through `reconnect` when given: the job is followed on, and the summary always
 * names its token — NO_PROGRESS when nothing answered or moved for the stall timeout.
 */
export async function followJob(o: FollowOptions, started: JobView, t0 = Date.now()): Promise<RunSummary> {
  let view = started;
  let api = { apiUrl: o.apiUrl, apiToken: o.apiToken };
  const progress = progressReporter(o.progress);
  const stallMs = (o.stallSeconds ?? DEFAULT_STALL_SECONDS) * 1000;
  const moved = (v: JobView) => `${v.state} ${v.progress.done} ${v.progress.chunksDone}`;
  let last = { mark: moved(view), at: Date.now() };
  let unreachable: string | undefined;
  /** The job's view now; undefined when the API did not answer (then the next try asks `reconnect` first). */
  const poll = async (): Promise<JobView | undefined> => {
    try {
      if (unreachable !== undefined && o.reconnect) api = { ...api, apiUrl: await o.reconnect() };
      const v = (await call<JobView>(api, 'GET', `/jobs/${encodeURIComponent(view.token)}`)).body;
      unreachable = undefined;
      return v;
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) throw err;
      if (unreachable === undefined && o.progress)
        process.stderr.write(
          `the API does not answer (${errorMessage(err)}); following job ${view.token} on…\n`,
        );
      unreachable = errorMessage(err);
      return undefined;
    }
  };
  const stalled = (): RunSummary => ({
    token: view.token,
    site: view.site,
    state: view.state,
    rows: view.rows,
    receivedAt: view.receivedAt,
    error: {
      code: 'NO_PROGRESS',
      message:
        `no progress for ${Math.round(stallMs / 1000)} s (${view.state}, ${view.progress.done}/${view.progress.total ?? '?'} records): ` +
        (unreachable ? `the API did not answer: ${unreachable}` : stallCause(view)),
    },
    seconds: (Date.now() - t0) / 1000,
  });
  for (;;) {
    while (!isTerminal(view.state)) {
      progress.update(view);
      if (Date.now() - last.at > stallMs) {
        progress.stop();
        return stalled();
      }
      await new Promise((r) => setTimeout(r, unreachable ? 1000 : pollMs(view)));
      view = (await poll()) ?? view;
      if (moved(view) !== last.mark) last = { mark: moved(view), at: Date.now() };
    }
    progress.update(view);
    const summary: RunSummary = {
      token: view.token,
      site: view.site,
      state: view.state,
      rows: view.rows,
      receivedAt: view.receivedAt,
      seconds: 0,
      ...(view.error ? { error: { code: view.error.code, message: view.error.message } } : {}),
    };
    if (view.download) {
      try {
        summary.zip = await download(view.download.url, join(o.outDir, `${view.token}.zip`));
      } catch (err) {
        if (err instanceof DownloadRefused) throw err;
        // The runtime went while the zip came: its view again (a new download URL) from the runtime now up.
        unreachable = errorMessage(err);
        if (Date.now() - last.at > stallMs) {
          progress.stop();
          return stalled();
        }
        await new Promise((r) => setTimeout(r, 1000));
        view = (await poll()) ?? view;
        continue;
      }
    }
    progress.stop();
    summary.seconds = (Date.now() - t0) / 1000;
    return summary;
  }
}

/** How often a job is asked for while it runs: every 250 ms, every 50 ms once its end is near. */
export const POLL_MS = { running: 250, ending: 50 } as const;

/**
 * The wait before the next look at a job. Once every record is done (or the finalize has begun) the job ends within
 * a finalize's time, and a 250 ms poll would add half of that on average to every small job's time before its zip is
 * downloaded; the closer polls last only that long.
 */
export function pollMs(v: Pick<JobView, 'state' | 'progress'>): number {
  const { done, total } = v.progress;
  const ending = v.state === 'FINALIZING' || (v.state === 'RUNNING' && total !== undefined && done >= total);
  return ending ? POLL_MS.ending : POLL_MS.running;
}

class DownloadRefused extends Error {}

/** Downloads `url` to `file` (its directory made); the file's absolute path. */
async function download(url: string, file: string): Promise<string> {
  await mkdir(resolve(file, '..'), { recursive: true });
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new DownloadRefused(`download failed: HTTP ${res.status}`);
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    createWriteStream(file),
  );
  return resolve(file);
}
