import type { Job } from '../../core/jobs/store.ts';

/** A RUNNING job of site sakai with a two-column header, as a worker reads it (unit tests of chunk work). */
export const RUNNING_JOB: Job = {
  site: 'sakai',
  token: '0f8fad5b-d9cb-469f-a165-70867728950e',
  state: 'RUNNING',
  processor: 'test',
  sourceKey: 'uploads/sakai/0f8fad5b-d9cb-469f-a165-70867728950e/source.csv',
  upload: 'direct',
  header: ['id', 'name'],
  chunksDone: 0,
  succeeded: 0,
  failed: 0,
  receivedAt: '2026-01-02T03:04:05.000Z',
};
