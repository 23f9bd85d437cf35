import { createHash, randomUUID } from 'node:crypto';
import { reportQueuePrefix } from '../../config/names.ts';

/** A new job token: a random UUID. */
export function newJobToken(): string {
  return randomUUID();
}

const TOKEN_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isJobToken(value: string): boolean {
  return TOKEN_RE.test(value);
}

/**
 * `<stage>-report-<sha1(token)>`: one queue per job and attempt, never reused (AWS blocks a deleted name for 60 s).
 * A retry's attempt (core/intake/rerun-failed.ts) gets its own: `sha1(<token>#<attempt>)`.
 */
export function reportQueueName(stage: string, token: string, attempt = 1): string {
  const id = attempt > 1 ? `${token}#${attempt}` : token;
  const name = reportQueuePrefix(stage) + createHash('sha1').update(id).digest('hex');
  if (name.length > 80) throw new Error(`queue name too long for SQS (80 max): ${name}`);
  return name;
}

/**
 * Where an attempt's own objects go: the job's first attempt (a job never retried) under the job's prefix as
 * always, a retry's attempt k under `a<k>/` of it, so no attempt ever reads another's bookkeeping.
 */
const attemptDir = (attempt: number | undefined) => (attempt && attempt > 1 ? `a${attempt}/` : '');

/** The objects of a resubmitted file (keys.resubmit). */
export type ResubmitFile = 'source.csv' | 'runs.jsonl' | 'rejected.jsonl' | 'chunks.jsonl';

/** S3 keys. The site is the first path element after the area, so one prefix holds one tenant's data. */
export const keys = {
  source: (site: string, token: string) => `uploads/${site}/${token}/source.csv`,
  /**
   * A presigned upload moved out of its form's reach when the split starts: a form can be posted again until
   * it expires, so the split validates (and the workers read) this copy, which nothing else writes.
   */
  movedSource: (site: string, token: string) => `jobs/${site}/${token}/source.csv`,
  /** The source transcoded to UTF-8, kept when the upload was CP932 or UTF-16 (workers read ranges of it). */
  utf8Source: (site: string, token: string) => `jobs/${site}/${token}/source.utf8.csv`,
  rejected: (site: string, token: string) => `jobs/${site}/${token}/rejected.jsonl`,
  /**
   * Numbers and lines of the records a retry may run after an attempt (kept after the parts are gone): the
   * records whose latest outcome is a processing failure or "never processed" (core/stop/rules.ts RETRIED_CODES).
   */
  failed: (site: string, token: string, attempt?: number) =>
    `jobs/${site}/${token}/${attemptDir(attempt)}failed.jsonl`,
  /** The record numbers a retry's attempt runs (one JSON number a line), written when it starts. */
  runs: (site: string, token: string, attempt: number) =>
    `jobs/${site}/${token}/${attemptDir(attempt)}runs.jsonl`,
  /**
   * A resubmitted file's objects (core/intake/resubmit.ts), under the attempt's directory and the resubmission's
   * own id (two resubmissions racing for one attempt never write each other's): the records it runs with their
   * corrected values (`source.csv`, UTF-8, each record led by its number and line), the numbers it runs
   * (`runs.jsonl`), the rows the split's record rules reject (`rejected.jsonl`, their outcome in the attempt) and
   * its chunk messages (`chunks.jsonl`, keys.attemptChunks).
   */
  resubmit: (site: string, token: string, attempt: number, id: string, file: ResubmitFile) =>
    `jobs/${site}/${token}/${attemptDir(attempt)}resubmit-${id}/${file}`,
  /** The split's chunk messages as JSON lines: a retry's attempt re-sends the ones holding its records. */
  chunkPlan: (site: string, token: string) => `jobs/${site}/${token}/chunks.jsonl`,
  /**
   * The chunk messages a retry's or a resubmission's attempt sends (JSON lines, without a traceparent: the attempt's
   * own is put on at each send), written before the write that starts it, so that the reaper can send them again
   * when the caller that started it died before it had sent them all (core/budget/attempt-send.ts). Beside the
   * attempt's records list: a resubmission's under its own id, like its runs.jsonl. Attempts 2, 3, … only (the
   * first attempt's are the split's, keys.chunkPlan).
   */
  attemptChunks: (site: string, token: string, attempt: number, resubmit?: string): string =>
    resubmit
      ? keys.resubmit(site, token, attempt, resubmit, 'chunks.jsonl')
      : `jobs/${site}/${token}/${attemptDir(attempt)}chunks.jsonl`,
  part: (site: string, token: string, chunk: number, attempt?: number) =>
    `jobs/${site}/${token}/${attemptDir(attempt)}parts/${String(chunk).padStart(7, '0')}.part`,
  /** A chunk's part when it was given up on: never the same object as a processed chunk's part. */
  gaveUpPart: (site: string, token: string, chunk: number, attempt?: number) =>
    `jobs/${site}/${token}/${attemptDir(attempt)}parts/${String(chunk).padStart(7, '0')}.gave-up.part`,
  /** The job's results.csv as of an attempt, beside its zip (the same bytes as the zip's entry): GET /jobs/{token}/results. */
  resultsSheet: (site: string, token: string, attempt?: number) =>
    `results/${site}/${token}/${attemptDir(attempt)}results.csv`,
  /** The job's zip as of an attempt (each attempt's zip merges the one before: core/finalize/attempts.ts). */
  result: (site: string, token: string, attempt?: number) =>
    `results/${site}/${token}/${attemptDir(attempt)}${token}.zip`,
  /** The rows of the zip's errors.csv as JSON lines, values as they are (GET /jobs/{token}/errors reads them). */
  errorRows: (site: string, token: string, attempt?: number) =>
    `results/${site}/${token}/${attemptDir(attempt)}errors.jsonl`,
};

/** Parses an uploads/<site>/<token>/source.csv key (S3 events); undefined for any other key. */
export function parseSourceKey(key: string): { site: string; token: string } | undefined {
  const m = /^uploads\/([a-z][a-z0-9-]{1,30})\/([0-9a-f-]{36})\/source\.csv$/.exec(key);
  if (!m || !isJobToken(m[2]!)) return undefined;
  return { site: m[1]!, token: m[2]! };
}
