import type {
  ApiErrorBody,
  CheckResult,
  ErrorPage,
  JobOptions,
  JobView,
  JobsPage,
  PresignedUpload,
  ResubmitResult,
  ResultsLink,
  UsageResponse,
} from './types.ts';

/** An answer other than 2xx: the HTTP status and, when the API said so, its error code, message and line. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    readonly line?: number,
    /** The job a rejected upload created (422 answers carry its view). */
    readonly job?: JobView,
    /** The error's other fields, as the API named them (e.g. the records or columns a 422 of a resubmit names). */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** Progress of one upload, in bytes. */
export type OnProgress = (loaded: number, total: number) => void;

function optionQuery(o: JobOptions & { fileName?: string }): URLSearchParams {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q;
}

function errorOf(status: number, text: string): ApiError {
  let body: { error?: ApiErrorBody; message?: string } & Partial<JobView> = {};
  try {
    body = text ? (JSON.parse(text) as typeof body) : {};
  } catch {
    // not JSON: an S3 or proxy error page
  }
  // The documented shape is {"error": {code, message, …}}; a bare {code, message, …} is read the same way.
  const e =
    body.error ??
    (typeof (body as { code?: unknown }).code === 'string' ? (body as unknown as ApiErrorBody) : undefined);
  const { code: _c, message: _m, line: _l, ...details } = (e ?? {}) as Record<string, unknown>;
  const s3 = /<Code>([^<]*)<\/Code>\s*<Message>([^<]*)<\/Message>/.exec(text);
  const job =
    typeof body.token === 'string' && typeof body.state === 'string' ? (body as JobView) : undefined;
  return new ApiError(
    status,
    e?.code ?? s3?.[1],
    e?.message ?? s3?.[2] ?? body.message ?? `HTTP ${status}`,
    e?.line,
    job,
    details,
  );
}

/** An XMLHttpRequest, for its upload progress events (fetch has none). Resolves with status and text. */
function xhr(
  method: string,
  url: string,
  body: XMLHttpRequestBodyInit,
  headers: Record<string, string>,
  onProgress?: OnProgress,
  signal?: AbortSignal,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = new XMLHttpRequest();
    req.open(method, url);
    for (const [k, v] of Object.entries(headers)) req.setRequestHeader(k, v);
    if (onProgress) req.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.total));
    req.addEventListener('load', () => resolve({ status: req.status, text: req.responseText }));
    req.addEventListener('error', () =>
      reject(new ApiError(0, 'NETWORK', `${method} ${url}: network error`)),
    );
    req.addEventListener('abort', () => reject(new ApiError(0, 'ABORTED', 'The upload was stopped.')));
    signal?.addEventListener('abort', () => req.abort());
    req.send(body);
  });
}

/** The Rowfleet API as the signed-in site: every request carries `Authorization: Bearer <token>`. */
export class Api {
  constructor(
    private readonly base: URL,
    private readonly token: string,
    /** Called on a 401: the token is no longer accepted. */
    private readonly onUnauthorized: () => void = () => undefined,
  ) {}

  private url(path: string): string {
    return new URL(path.replace(/^\//, ''), this.base).href;
  }

  private get auth(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` };
  }

  async request<T>(method: string, path: string, init: { json?: unknown; signal?: AbortSignal } = {}) {
    const res = await fetch(this.url(path), {
      method,
      headers: { ...this.auth, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      signal: init.signal,
      cache: 'no-store',
    });
    const text = await res.text();
    if (res.status === 401) this.onUnauthorized();
    if (!res.ok) throw errorOf(res.status, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** GET /jobs: the newest page of the site's jobs, or the page `cursor` (an earlier page's `next`) names. */
  listJobsPage(cursor?: string, signal?: AbortSignal): Promise<JobsPage> {
    const q = cursor ? `?${new URLSearchParams({ cursor })}` : '';
    return this.request<JobsPage>('GET', `/jobs${q}`, { signal });
  }

  /** The newest page of the site's jobs. */
  listJobs(signal?: AbortSignal): Promise<JobView[]> {
    return this.listJobsPage(undefined, signal).then((r) => r.jobs);
  }

  getJob(token: string, signal?: AbortSignal): Promise<JobView> {
    return this.request<JobView>('GET', `/jobs/${encodeURIComponent(token)}`, { signal });
  }

  getErrors(token: string, offset: number, limit: number, signal?: AbortSignal): Promise<ErrorPage> {
    const q = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    return this.request<ErrorPage>('GET', `/jobs/${encodeURIComponent(token)}/errors?${q}`, { signal });
  }

  cancelJob(token: string): Promise<JobView> {
    return this.request<JobView>('DELETE', `/jobs/${encodeURIComponent(token)}`);
  }

  retryJob(token: string): Promise<JobView> {
    return this.request<JobView>('POST', `/jobs/${encodeURIComponent(token)}/retry`);
  }

  /** POST /jobs?check=true with the CSV as the body: the check of the file as a job would split it; no job. */
  async checkFile(file: Blob, fileName: string, o: JobOptions, signal?: AbortSignal): Promise<CheckResult> {
    const q = optionQuery({ ...o, fileName });
    q.set('check', 'true');
    return this.sendCsv<CheckResult>(`/jobs?${q}`, file, signal);
  }

  /** POST /jobs/{token}/resubmit with the corrected results.csv (or errors.csv): the job's next attempt. */
  resubmit(token: string, file: Blob, signal?: AbortSignal): Promise<ResubmitResult> {
    return this.sendCsv<ResubmitResult>(`/jobs/${encodeURIComponent(token)}/resubmit`, file, signal);
  }

  /**
   * Where the job's latest results.csv is: GET /jobs/{token}/results answers a presigned link and the file's
   * name. The one place that knows this route's answer.
   */
  resultsLink(token: string, signal?: AbortSignal): Promise<ResultsLink> {
    return this.request<ResultsLink>('GET', `/jobs/${encodeURIComponent(token)}/results`, { signal });
  }

  private async sendCsv<T>(path: string, file: Blob, signal?: AbortSignal): Promise<T> {
    const res = await fetch(this.url(path), {
      method: 'POST',
      headers: { ...this.auth, 'content-type': 'text/csv' },
      body: file,
      signal,
      cache: 'no-store',
    });
    const text = await res.text();
    if (res.status === 401) this.onUnauthorized();
    if (!res.ok) throw errorOf(res.status, text);
    return JSON.parse(text) as T;
  }

  getUsage(from: string, to: string, signal?: AbortSignal): Promise<UsageResponse> {
    return this.request<UsageResponse>('GET', `/usage?${new URLSearchParams({ from, to })}`, { signal });
  }

  /** POST /jobs with the CSV as the body: stored and split at once; answers the job's view (202). */
  async uploadDirect(
    file: Blob,
    fileName: string,
    o: JobOptions,
    onProgress?: OnProgress,
    signal?: AbortSignal,
  ): Promise<JobView> {
    const url = this.url(`/jobs?${optionQuery({ ...o, fileName })}`);
    const r = await xhr('POST', url, file, { ...this.auth, 'content-type': 'text/csv' }, onProgress, signal);
    if (r.status === 401) this.onUnauthorized();
    if (r.status < 200 || r.status > 299) throw errorOf(r.status, r.text);
    return JSON.parse(r.text) as JobView;
  }

  /** POST /uploads, then the presigned S3 POST of the file; answers the new job's token. */
  async uploadPresigned(
    file: Blob,
    fileName: string,
    o: JobOptions,
    onProgress?: OnProgress,
    signal?: AbortSignal,
  ): Promise<string> {
    const created = await this.request<PresignedUpload>('POST', '/uploads', {
      json: { ...o, fileName },
      signal,
    });
    if (file.size > created.upload.maxBytes) {
      throw new ApiError(
        413,
        'FILE_TOO_LARGE',
        `The file is ${file.size} bytes; uploads take up to ${created.upload.maxBytes}.`,
      );
    }
    const form = new FormData();
    for (const [k, v] of Object.entries(created.upload.fields)) form.append(k, v);
    form.append('file', file, fileName);
    const r = await xhr('POST', created.upload.url, form, {}, onProgress, signal);
    if (r.status < 200 || r.status > 299) throw errorOf(r.status, r.text);
    return created.token;
  }

  /**
   * Uploads a file the way its size calls for: up to the direct-upload limit in the request itself, above it
   * through a presigned S3 POST. Answers the new job's token.
   */
  async upload(
    file: Blob,
    fileName: string,
    o: JobOptions,
    directMaxBytes: number,
    onProgress?: OnProgress,
    signal?: AbortSignal,
  ): Promise<string> {
    if (file.size <= directMaxBytes) {
      try {
        return (await this.uploadDirect(file, fileName, o, onProgress, signal)).token;
      } catch (err) {
        // The stage's limit may be lower than the one this console was built with: the API names the way.
        if (!(err instanceof ApiError && err.status === 413)) throw err;
      }
    }
    return this.uploadPresigned(file, fileName, o, onProgress, signal);
  }
}
