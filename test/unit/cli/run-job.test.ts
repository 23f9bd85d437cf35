import { createServer, type RequestListener, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../../core/intake/operations.ts';
import { followJob, pollMs, POLL_MS, stallCause } from '../../../cli/run-job.ts';

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

async function serve(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('Function: followJob through a runtime restart', () => {
  it('follows the job on at the API of the runtime started again, downloads its zip and names its token', async () => {
    // Prepare: the first runtime's API answers RUNNING twice, then dies (its port closed); the one started
    // again (what `reconnect` attaches to) has the job SUCCEEDED, with its zip
    const running = view({ state: 'RUNNING', progress: { done: 10, chunksDone: 1, total: 100 } });
    let polls = 0;
    const first = await serve((_req, res) => {
      polls++;
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify(running));
      if (polls === 2) {
        first.server.close();
        first.server.closeAllConnections();
      }
    });
    const second = await serve((req, res) => {
      if (req.url === '/zip') return void res.end('the zip');
      res.writeHead(200, { 'content-type': 'application/json' });
      const done = view({
        state: 'SUCCEEDED',
        rows: { total: 100, succeeded: 100, failed: 0, rejected: 0 },
        progress: { done: 100, chunksDone: 10, total: 100 },
      });
      res.end(JSON.stringify({ ...done, download: { url: `${second.url}/zip`, expiresInSeconds: 60 } }));
    });
    const outDir = await mkdtemp(join(tmpdir(), 'rowfleet-follow-'));
    let reconnects = 0;

    // Act
    const summary = await followJob(
      {
        apiUrl: first.url,
        apiToken: 't',
        outDir,
        progress: false,
        stallSeconds: 30,
        reconnect: async () => (reconnects++, second.url),
      },
      running,
    );
    second.server.close();

    // Assess
    expect(summary.token).toBe(running.token);
    expect(summary.state).toBe('SUCCEEDED');
    expect(summary.rows.succeeded).toBe(100);
    expect(reconnects).toBeGreaterThan(0);
    expect(await readFile(summary.zip!, 'utf8')).toBe('the zip');
    await rm(outDir, { recursive: true, force: true });
  });

  it('names the token (NO_PROGRESS, the API did not answer) when no runtime comes back', async () => {
    // Prepare: an API that is gone
    const gone = await serve(() => undefined);
    gone.server.close();
    const running = view({ state: 'RUNNING', progress: { done: 10, chunksDone: 1 } });

    // Act
    const summary = await followJob(
      { apiUrl: gone.url, apiToken: 't', outDir: '/nonexistent', progress: false, stallSeconds: 1 },
      running,
    );

    // Assess
    expect(summary.token).toBe(running.token);
    expect(summary.error?.code).toBe('NO_PROGRESS');
    expect(summary.error?.message).toMatch(/did not answer/);
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

describe('Function: pollMs (how soon a followed job is asked again)', () => {
  it('asks every 250 ms while records remain, every 50 ms once they are all done or the finalize began', () => {
    const running = (done: number, total?: number) =>
      view({
        state: 'RUNNING',
        progress: { done, chunksDone: 0, ...(total !== undefined ? { total } : {}) },
      });
    expect(pollMs(view())).toBe(POLL_MS.running);
    expect(pollMs(running(0))).toBe(POLL_MS.running);
    expect(pollMs(running(99, 100))).toBe(POLL_MS.running);
    expect(pollMs(running(100, 100))).toBe(POLL_MS.ending);
    expect(pollMs(view({ state: 'FINALIZING', progress: { done: 100, chunksDone: 10, total: 100 } }))).toBe(
      POLL_MS.ending,
    );
    expect(POLL_MS).toEqual({ running: 250, ending: 50 });
  });

  it('lets followJob see the end of a finalizing job within the short poll', async () => {
    // Prepare: a job FINALIZING for 500 ms, then SUCCEEDED (no zip: nothing to download)
    const started = Date.now();
    let polls = 0;
    const api = await serve((_req, res) => {
      polls++;
      res.writeHead(200, { 'content-type': 'application/json' });
      const ended = Date.now() - started > 500;
      res.end(
        JSON.stringify(
          view({
            state: ended ? 'SUCCEEDED' : 'FINALIZING',
            progress: { done: 10, chunksDone: 1, total: 10 },
          }),
        ),
      );
    });

    // Act
    const summary = await followJob(
      { apiUrl: api.url, apiToken: 't', outDir: '/nonexistent', progress: false },
      view({ state: 'FINALIZING', progress: { done: 10, chunksDone: 1, total: 10 } }),
    );
    api.server.close();

    // Assess: a poll every 250 ms would have asked at most three times
    expect(summary.state).toBe('SUCCEEDED');
    expect(polls).toBeGreaterThan(3);
  });
});
