/** Runs whole jobs through the core pipeline in this process: split, workers, finalize (each finalize delivered twice). */
import { finalizeJob } from '../../core/finalize/finalize.ts';
import type { Job } from '../../core/jobs/store.ts';
import { startDirectJob } from '../../core/intake/operations.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { runWorker } from '../../core/work/worker.ts';
import type { RecordingLauncher } from './aws.ts';

export interface JobSpec {
  readonly site: string;
  readonly office: string;
  /** The CSV file's content. */
  readonly csv: string;
}

/** `id,name` and `records` records; the records numbered in `bad` get an extra field (COLUMN_COUNT, rejected). */
export function csvOf(records: number, bad: readonly number[] = []): string {
  const lines = ['id,name'];
  for (let n = 1; n <= records; n++) lines.push(bad.includes(n) ? `${n},name ${n},extra` : `${n},name ${n}`);
  return lines.join('\n') + '\n';
}

/** Takes every finalize request off the queue (the split and the workers send theirs before they return). */
export async function drainFinalizeRequests(deps: PipelineDeps): Promise<{ site: string; token: string }[]> {
  const out: { site: string; token: string }[] = [];
  for (let empty = 0; empty < 2;) {
    const msgs = await deps.queues.receive(deps.env.finalizeQueueUrl, { max: 10, waitSeconds: 0 });
    if (msgs.length === 0) empty++;
    for (const m of msgs) {
      out.push(JSON.parse(m.Body!) as { site: string; token: string });
      await deps.queues.delete(deps.env.finalizeQueueUrl, m.ReceiptHandle!);
    }
  }
  return out;
}

/** Runs every worker launched so far (only those of `tokens` where given) at the same time, as ECS would. */
export async function runLaunchedWorkers(
  deps: PipelineDeps,
  launcher: RecordingLauncher,
  tokens?: ReadonlySet<string>,
): Promise<void> {
  await Promise.all(
    launcher.launches
      .filter((l) => !tokens || tokens.has(l.token))
      .flatMap((l) =>
        Array.from({ length: l.count }, () =>
          runWorker(deps, {
            site: l.site,
            token: l.token,
            waitSeconds: 0,
            idlePolls: 3,
            visibilitySeconds: 30,
          }),
        ),
      ),
  );
}

/**
 * Starts every job at once (direct upload, split inline), runs the launched workers, then delivers every finalize
 * request twice at the same time, as SQS may. Returns the finished job records, in the order of `specs`.
 */
export async function runJobs(
  deps: PipelineDeps,
  launcher: RecordingLauncher,
  specs: readonly JobSpec[],
): Promise<Job[]> {
  const views = await Promise.all(
    specs.map((s) =>
      startDirectJob(deps, s.site, Buffer.from(s.csv, 'utf8'), { processor: 'json', office: s.office }),
    ),
  );
  await runLaunchedWorkers(deps, launcher, new Set(views.map((v) => v.token)));
  const requests = await drainFinalizeRequests(deps);
  await Promise.all(
    requests.flatMap((r) => [finalizeJob(deps, r.site, r.token), finalizeJob(deps, r.site, r.token)]),
  );
  return Promise.all(
    views.map(async (v) => {
      const job = await deps.jobs.get(v.site, v.token);
      if (!job) throw new Error(`job ${v.site}/${v.token} vanished`);
      return job;
    }),
  );
}

/**
 * One attempt of a job already started: runs the workers launched for `token` since launch `from`, one after the
 * other, takes the finalize requests off the queue and finalizes once. Returns the job record afterwards.
 */
export async function runAttempt(
  deps: PipelineDeps,
  launcher: RecordingLauncher,
  site: string,
  token: string,
  from: number,
): Promise<Job> {
  for (const l of launcher.launches.slice(from).filter((x) => x.token === token)) {
    for (let i = 0; i < l.count; i++) {
      await runWorker(deps, { site, token, waitSeconds: 0, idlePolls: 3, visibilitySeconds: 30 });
    }
  }
  await drainFinalizeRequests(deps);
  await finalizeJob(deps, site, token);
  const job = await deps.jobs.get(site, token);
  if (!job) throw new Error(`job ${site}/${token} vanished`);
  return job;
}
