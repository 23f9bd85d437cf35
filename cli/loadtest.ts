import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { getStage } from '../config/index.ts';
import type { AttachedRuntime } from '../local/attach.ts';
import { writeSampleCsv } from './gen-data.ts';
import { runJob, type RunSummary } from './run-job.ts';
import type { JobRequest } from '../core/intake/request.ts';

export interface LoadtestOptions {
  readonly records: number;
  readonly site: string;
  readonly processor: string;
  readonly workers?: number;
  readonly simulateDelayMs?: number;
  readonly simulateErrorRate?: number;
  /** Further job request fields (e.g. `concurrency`, `template`). */
  readonly request?: Partial<JobRequest>;
  readonly outDir: string;
  readonly progress: boolean;
  readonly stallSeconds?: number;
}

export interface LoadtestResult extends RunSummary {
  readonly records: number;
  readonly fileBytes: number;
  readonly recordsPerSecond: number;
}

/**
 * Generates `records` sample records (with a recipient each for the `mail` processor), runs them as one job
 * through the local API, measures throughput.
 */
export async function loadtest(
  rt: Pick<AttachedRuntime, 'stateDir' | 'apiUrl' | 'tokenFor' | 'stage'>,
  o: LoadtestOptions,
): Promise<LoadtestResult> {
  const dir = join(rt.stateDir, 'loadtest');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `loadtest-${o.records}.csv`);
  const fileBytes = await writeSampleCsv(file, o.records, 'utf-8', { email: o.processor === 'mail' });
  try {
    const summary = await runJob({
      apiUrl: rt.apiUrl,
      apiToken: await rt.tokenFor(o.site),
      file,
      processor: o.processor,
      workers: o.workers,
      simulateDelayMs: o.simulateDelayMs,
      simulateErrorRate: o.simulateErrorRate,
      request: o.request,
      outDir: o.outDir,
      directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
      progress: o.progress,
      stallSeconds: o.stallSeconds,
    });
    return {
      ...summary,
      records: o.records,
      fileBytes,
      recordsPerSecond: Math.round(o.records / summary.seconds),
    };
  } finally {
    await rm(file, { force: true });
  }
}
