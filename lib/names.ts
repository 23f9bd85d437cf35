/**
 * Names the infrastructure shares with the code in core/ (lib may not import core; test/infra checks that
 * these agree with core/jobs/keys.ts).
 */

/** Prefix of the per-job queues the code creates at run time: `<stage>-report-<sha1(token)>`. */
export function reportQueuePrefix(stage: string): string {
  return `${stage}-report-`;
}

/** Top-level key prefixes of the data bucket (uploads/<site>/…, jobs/<site>/…, results/<site>/…). */
export const KEY_PREFIXES = {
  uploads: 'uploads/',
  jobs: 'jobs/',
  results: 'results/',
} as const;

/** Physical names that operators type (queues, cluster, log groups); the local runtime uses the same queue names. */
export function resourceNames(stage: string) {
  return {
    finalizeQueue: `${stage}-finalize`,
    dlq: `${stage}-dlq`,
    uploadEventsQueue: `${stage}-upload-events`,
    schedulesDlq: `${stage}-schedules-dlq`,
    cluster: `rowfleet-${stage}`,
    workerFamily: `rowfleet-${stage}-worker`,
    api: `rowfleet-${stage}`,
    dashboard: `rowfleet-${stage}`,
    scheduleGroup: `rowfleet-${stage}`,
    logGroup: (name: string) => `/rowfleet/${stage}/${name}`,
  };
}
