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

/** `<stage>-report-<sha1(token)>`: one queue per job, never reused (AWS blocks a deleted name for 60 s). */
export function reportQueueName(stage: string, token: string): string {
  const name = reportQueuePrefix(stage) + createHash('sha1').update(token).digest('hex');
  if (name.length > 80) throw new Error(`queue name too long for SQS (80 max): ${name}`);
  return name;
}

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
  /** Numbers of the records that failed in processing (kept after the parts are gone, for `retry`). */
  failed: (site: string, token: string) => `jobs/${site}/${token}/failed.jsonl`,
  part: (site: string, token: string, chunk: number) =>
    `jobs/${site}/${token}/parts/${String(chunk).padStart(7, '0')}.part`,
  /** A chunk's part when it was given up on: never the same object as a processed chunk's part. */
  gaveUpPart: (site: string, token: string, chunk: number) =>
    `jobs/${site}/${token}/parts/${String(chunk).padStart(7, '0')}.gave-up.part`,
  result: (site: string, token: string) => `results/${site}/${token}/${token}.zip`,
  /** The rows of the zip's errors.csv as JSON lines, values as they are (GET /jobs/{token}/errors reads them). */
  errorRows: (site: string, token: string) => `results/${site}/${token}/errors.jsonl`,
};

/** Parses an uploads/<site>/<token>/source.csv key (S3 events); undefined for any other key. */
export function parseSourceKey(key: string): { site: string; token: string } | undefined {
  const m = /^uploads\/([a-z][a-z0-9-]{1,30})\/([0-9a-f-]{36})\/source\.csv$/.exec(key);
  if (!m || !isJobToken(m[2]!)) return undefined;
  return { site: m[1]!, token: m[2]! };
}
