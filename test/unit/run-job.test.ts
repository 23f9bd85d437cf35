import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../core/intake/api.ts';
import { followJob, stallCause } from '../../scripts/run-job.ts';

const view = (over: Partial<JobView> = {}): JobView => ({
  token: '00000000-0000-4000-8000-000000000000',
  site: 'sakai',
  state: 'RECEIVED',
  processor: 'json',
  rows: { total: 0, succeeded: 0, failed: 0, rejected: 0 },
  progress: { done: 0, chunksDone: 0 },
  receivedAt: new Date().toISOString(),
  attempts: [],
  retryable: 0,
  ...over,
});

describe('Function: followJob', () => {
  it('gives up with NO_PROGRESS naming the likely cause when the job does not move (the upload event never came)', async () => {
    // Prepare: an API whose job stays RECEIVED
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(view()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // Act
    const t0 = Date.now();
    const summary = await followJob(
      { apiUrl, apiToken: 't', outDir: '/nonexistent', progress: false, stallSeconds: 1 },
      view(),
    );
    server.close();

    // Assess
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(summary.state).toBe('RECEIVED');
    expect(summary.error?.code).toBe('NO_PROGRESS');
    expect(summary.error?.message).toMatch(/S3 event did not arrive/);
  });
});

describe('Function: stallCause', () => {
  it('names a cause for each state a job can stall in', () => {
    // Act, Assess
    expect(stallCause(view({ state: 'RUNNING' }))).toMatch(/no worker is running/);
    expect(stallCause(view({ state: 'RUNNING', progress: { done: 5, chunksDone: 1 } }))).toMatch(
      /stopped making progress/,
    );
    expect(stallCause(view({ state: 'FINALIZING' }))).toMatch(/finalize has not finished/);
  });
});
