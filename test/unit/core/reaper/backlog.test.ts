import { describe, expect, it } from 'vitest';
import { backlogBySite } from '../../../../core/reaper/backlog.ts';

const now = Date.parse('2026-12-07T00:10:00.000Z');
const job = (site: string, state: string, o: Record<string, unknown> = {}) =>
  ({ site, state, succeeded: 0, failed: 0, receivedAt: '2026-12-07T00:00:00.000Z', ...o }) as Parameters<
    typeof backlogBySite
  >[0][number];

describe('Backlog by site', () => {
  it('counts records left over running and queued jobs, and the jobs waiting for workers with the longest wait', () => {
    const backlog = backlogBySite(
      [
        job('sakai', 'RUNNING', { totalRecords: 1000, rejected: 10, succeeded: 400, failed: 90 }),
        job('sakai', 'QUEUED', { totalRecords: 300, queuedAt: '2026-12-07T00:09:00.000Z' }),
        job('sakai', 'QUEUED', { totalRecords: 50, queuedAt: '2026-12-07T00:07:30.000Z' }),
        // Not in flight, or not planned yet: no records left to count, no wait for workers.
        job('sakai', 'SUCCEEDED', { totalRecords: 99 }),
        job('sakai', 'FINALIZING', { totalRecords: 99 }),
        job('sakai', 'RECEIVED'),
        job('kobe', 'RUNNING', { totalRecords: 10, succeeded: 10 }),
      ],
      ['sakai', 'kawasaki'],
      now,
    );
    expect(backlog).toEqual([
      { site: 'sakai', records: 500 + 300 + 50, jobsWaiting: 2, oldestWaitMs: 150_000 },
      // A configured site with nothing in flight reports zeros (its alarm clears).
      { site: 'kawasaki', records: 0, jobsWaiting: 0, oldestWaitMs: 0 },
      { site: 'kobe', records: 0, jobsWaiting: 0, oldestWaitMs: 0 },
    ]);
  });
});
