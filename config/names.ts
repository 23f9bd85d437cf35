/**
 * Names the code and the infrastructure share (config/ is the one folder both core/ and lib/ import): the
 * stage's queue names, the per-job queue prefix, the bucket's key areas, and the physical names the local
 * runtime gives what the CDK stack names on AWS.
 */

/** Prefix of the per-job queues the split creates at run time: `<stage>-report-<sha1(token)>`. */
export function reportQueuePrefix(stage: string): string {
  return `${stage}-report-`;
}

/**
 * How the job table's partition keys begin: a site's items (`SITE#<site>`), API token hashes, the stage-wide
 * rate-limit windows, the worker budget. core/ builds its keys from these; lib/ narrows each function's table
 * grant to the partitions it uses (the dynamodb:LeadingKeys condition).
 */
export const TABLE_PARTITIONS = {
  site: 'SITE#',
  apiToken: 'APITOKEN#',
  rateWindow: 'RATE#',
  budget: 'BUDGET',
} as const;

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

/**
 * The stage's shared resources when the local runtime creates them: the queues as on AWS, and fixed names
 * for what CloudFormation names on AWS (bucket, table, topic).
 */
export function localResourceNames(stage: string) {
  const aws = resourceNames(stage);
  return {
    bucket: `rowfleet-${stage}-data`,
    table: `rowfleet-${stage}-jobs`,
    finalizeQueue: aws.finalizeQueue,
    dlq: aws.dlq,
    uploadEventsQueue: aws.uploadEventsQueue,
    jobsTopic: `rowfleet-${stage}-job-outcomes`,
  };
}

/**
 * Process environment a function runs with beyond its resources', the same on AWS (lib/rowfleet-function.ts) and
 * in the local runtime's function processes (local/functions.ts). The finalize streams a million-record job's zip
 * and results.csv through buffers of a few hundred KiB: glibc's default keeps such freed blocks in its arenas
 * (the finalize's RSS grew ~250 MiB beyond the V8 heap and ArrayBuffers at 1M records), while above this
 * threshold they are mmapped and handed back when freed (docs/performance.md, finalize memory).
 */
export const FUNCTION_PROCESS_ENV: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  finalize: { MALLOC_MMAP_THRESHOLD_: '131072' },
};
