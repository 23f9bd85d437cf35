import { ENV } from '../../config/env.ts';
/** Reads a required environment variable once, failing fast with its name. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const v = env[name];
  if (v === undefined || v === '') throw new Error(`Missing environment variable ${name}`);
  return v;
}

export function intEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`Environment variable ${name} must be a number, got "${v}"`);
  return n;
}

/** The resources every Rowfleet component addresses, as the CDK stack and the local runtime set them. */
export interface ResourceEnv {
  readonly stage: string;
  readonly bucket: string;
  readonly table: string;
  readonly finalizeQueueUrl: string;
  readonly dlqArn: string;
  /**
   * The local runtime instance this process belongs to (ROWFLEET_RUNTIME_INSTANCE, set only by the local runtime):
   * it names the holder of a finalize lease, so a later runtime can release the leases of one that was killed.
   */
  readonly instance?: string;
  /**
   * Where grant-pass requests go (the upload-events queue, which the upload function reads): a worker that left
   * and a finalize that ended a job ask for a pass there. Unset outside the stage: the reaper's pass grants.
   */
  readonly grantRequestsQueueUrl?: string;
}

export function resourceEnv(env: NodeJS.ProcessEnv = process.env): ResourceEnv {
  const instance = env[ENV.runtimeInstance];
  const grants = env[ENV.grantRequestsQueueUrl];
  return {
    stage: requireEnv(ENV.stage, env),
    bucket: requireEnv(ENV.bucket, env),
    table: requireEnv(ENV.table, env),
    finalizeQueueUrl: requireEnv(ENV.finalizeQueueUrl, env),
    dlqArn: requireEnv(ENV.dlqArn, env),
    ...(instance ? { instance } : {}),
    ...(grants ? { grantRequestsQueueUrl: grants } : {}),
  };
}
