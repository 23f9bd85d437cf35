/**
 * Fargate row worker entry point: works through one job's queue, then exits.
 * SITE and JOB_TOKEN come from the RunTask overrides (or the local launcher); resources from the task's env.
 */
import { derivedTimings, getStage } from '../config/index.ts';
import { depsFromEnv } from '../core/deps.ts';
import { requireEnv } from '../core/shared/env.ts';
import { jobLogger } from '../core/shared/log.ts';
import { runWorker } from '../core/work/worker.ts';
import { hostname } from 'node:os';
import { ENV } from '../config/env.ts';

const site = requireEnv(ENV.site);
const token = requireEnv(ENV.jobToken);
const log = jobLogger(site, token);
const stop = new AbortController();
const abortRecords = new AbortController();

const noLauncher = {
  launch: () => Promise.reject(new Error('workers do not launch workers')),
  stop: () => Promise.resolve(0),
  list: () => Promise.resolve([]),
};
const deps = depsFromEnv(noLauncher);
// The worker's lane in its job's trace: the launcher's id locally (`local-<pid>`), the task's host name on Fargate.
const workerId = process.env.ECS_CONTAINER_METADATA_URI_V4 ? hostname() : `local-${process.pid}`;

// ECS stops a task with SIGTERM (SIGKILL after stopTimeout); a terminal's Ctrl-C sends SIGINT locally. The chunks
// in hand are finished first; records still running shortly before the SIGKILL are aborted (ctx.signal), so a
// processor can stop cleanly and their chunks go back to the queue. A job that was stopped early (cancelled, over
// its failure rate) counts nothing more: its records in flight are aborted at once, and the worker leaves.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info(`${signal}: finishing the chunks in hand, then exiting`);
    stop.abort();
    const { workerAbortRecordsSeconds } = derivedTimings(getStage(requireEnv(ENV.stage)).timings);
    setTimeout(
      () => abortRecords.abort(new Error(`${signal}: the stop cannot wait longer`)),
      workerAbortRecordsSeconds * 1000,
    ).unref();
    deps.jobs
      .get(site, token, false)
      .then((job) => {
        if (!job?.stop && job?.state === 'RUNNING') return;
        log.info(`${signal}: the job was stopped or ended; abandoning the records in flight`);
        abortRecords.abort(new Error(`${signal}: the job was ${job?.stop ? 'stopped' : 'ended'}`));
      })
      .catch(() => undefined);
  });
}

try {
  // Poll timing and visibility: the stage's timings (config/), like every other part of the pipeline.
  const summary = await runWorker(deps, {
    site,
    token,
    signal: stop.signal,
    abortRecords: abortRecords.signal,
    workerId,
  });
  log.info('worker done', { ...summary });
  // Every path out (SIGTERM included: the loop ends, then this) exports the spans still queued first.
  await deps.tracing?.shutdown();
  process.exit(0);
} catch (err) {
  log.error('worker failed', { error: err as Error });
  await deps.tracing?.shutdown();
  process.exit(1);
}
