/**
 * The index GET /jobs pages through: a site's jobs ordered by time. Its partition key is the table's own `pk`
 * (`SITE#<site>`: the site is in the key, a query never leaves one site) and its sort key `receivedAt`, which
 * only job items carry (so every job is in it from its creation, and no other item is). It projects the fields
 * a job's listing shows and nothing heavier (not the header, the options or the chunk-counting marks), so a
 * page reads the same few units whatever the site's history. core/jobs/store.ts queries it; core/jobs/table.ts
 * (the local runtime and the tests) and lib/storage.ts (AWS) declare it from here.
 */
export const JOBS_BY_TIME_INDEX = {
  name: 'jobs-by-time',
  partitionKey: 'pk',
  sortKey: 'receivedAt',
  /** The job's fields the listing's view (core/intake/operations.ts jobView) reads, besides the keys. */
  projected: [
    'token',
    'site',
    'state',
    'processor',
    'fileName',
    'office',
    'encoding',
    'upload',
    'totalRecords',
    'totalChunks',
    'chunksDone',
    'succeeded',
    'failed',
    'rejected',
    'error',
    'resultKey',
    'resultBytes',
    'finishedAt',
    'retryOf',
    'attempt',
    'attempts',
    'retryable',
  ],
} as const;
