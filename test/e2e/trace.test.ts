/**
 * Issue 22, done when: a job's trace is one trace — linked chunk spans, no orphan spans, one span per chunk attempt
 * (never per record) — read from the local span store after an e2e job with a killed worker and a retry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JobView } from '../../core/intake/operations.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import type { Timeline } from '../../core/shared/timeline.ts';
import { readSpans } from '../../core/shared/trace-file.ts';
import { ATTR } from '../../core/shared/trace.ts';
import { MAX_CHUNK_ATTEMPTS } from '../../core/work/worker.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { startJob } from '../../cli/run-job.ts';
import { rowfleet } from '../helpers/cli.ts';
import { workerPids } from '../helpers/tasks.ts';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

let dir = '';
let rt: LocalRuntime;
let apiToken = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-trace-'));
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
  apiToken = await rt.issueToken('sakai');
});

afterAll(async () => {
  await rt?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string): Promise<T> {
  const res = await fetch(rt.apiUrl + path, { method, headers: { authorization: `Bearer ${apiToken}` } });
  return (await res.json()) as T;
}

async function waitFor(token: string, until: (v: JobView) => boolean, timeoutMs = 120_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await api<JobView>('GET', `/jobs/${token}`);
    if (until(v)) return v;
    if (Date.now() > deadline) throw new Error(`job ${token}: timed out at ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("Scenario: a job's trace through a killed worker and a retry", () => {
  it(
    'is one trace: chunk attempts linked to the job (and attempt) span, no orphan, one span per chunk attempt',
    { timeout: 240_000 },
    async () => {
      // Prepare: a job of 3 workers long enough to kill one while it holds chunks, and to cancel it mid-run
      const records = 6000;
      const file = join(dir, 'jobs.csv');
      await writeSampleCsv(file, records);
      const stateDir = join(dir, 'state');

      // Act: a worker SIGKILLed mid-job (its chunks come back to the others), the job cancelled, then retried: the
      // records the cancel left run as the job's attempt 2
      const started = await startJob({
        apiUrl: rt.apiUrl,
        apiToken,
        file,
        processor: 'json',
        workers: 3,
        simulateDelayMs: 10,
        request: { concurrency: 2 },
        outDir: join(dir, 'out'),
        directMaxBytes: 4_500_000,
        progress: false,
      });
      const token = started.token;
      let pids: number[] = [];
      for (let i = 0; i < 300 && pids.length < 3; i++) {
        await new Promise((r) => setTimeout(r, 100));
        pids = workerPids(stateDir);
      }
      expect(pids).toHaveLength(3);
      await new Promise((r) => setTimeout(r, 2500)); // chunks taken, some done and exported
      process.kill(pids[0]!, 'SIGKILL');
      await waitFor(token, (v) => v.progress.done >= records / 2);
      await api('DELETE', `/jobs/${token}`);
      const cancelled = await waitFor(token, (v) => isTerminal(v.state));
      await api('POST', `/jobs/${token}/retry`);
      const retried = await waitFor(token, (v) => isTerminal(v.state) && v.attempts.length === 2);
      // The finalize's last spans are written as its invocation ends.
      await new Promise((r) => setTimeout(r, 1500));
      const spans = await readSpans(join(stateDir, 'traces'), 'sakai', token);
      const timeline = await api<Timeline>('GET', `/jobs/${token}/timeline`);
      // The terminal's view of the same timeline, attached to this runtime by its state directory.
      const printed = await rowfleet(['trace', token, '--site', 'sakai', '--state-dir', stateDir], 120_000);
      const first = { token };
      expect(cancelled.state).toBe('CANCELLED');
      expect(retried.state).toBe('SUCCEEDED');

      // Assess: one trace, rooted in the job span with the ids the job item was given at upload
      const job = spans.filter((s) => s.name === 'rowfleet.job');
      expect(job).toHaveLength(1);
      expect(job[0]!.parentSpanId).toBeUndefined();
      expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([job[0]!.traceId]));
      const attempt = spans.filter((s) => s.name === 'rowfleet.attempt');
      expect(attempt).toHaveLength(1);
      expect(attempt[0]!.parentSpanId).toBe(job[0]!.spanId);
      // No orphan: every parent is in the store.
      const ids = new Set(spans.map((s) => s.spanId));
      expect(spans.filter((s) => s.parentSpanId && !ids.has(s.parentSpanId)).map((s) => s.name)).toEqual([]);
      for (const name of ['rowfleet.split', 'rowfleet.queued', 'rowfleet.finalize', 'rowfleet.zip'])
        expect(
          spans.some((s) => s.name === name),
          name,
        ).toBe(true);

      // Chunk spans: children of their worker's start span, linked (not parented) to their attempt's span.
      const chunks = spans.filter((s) => s.name === 'rowfleet.chunk');
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const spanOfAttempt = (n: number) => (n > 1 ? attempt[0]! : job[0]!).spanId;
      expect(chunks.length).toBeGreaterThan(0);
      for (const c of chunks) {
        expect(byId.get(c.parentSpanId!)?.name).toBe('rowfleet.worker.start');
        expect(c.parentSpanId).not.toBe(job[0]!.spanId);
        expect(c.links.map((l) => l.spanId)).toEqual([spanOfAttempt(Number(c.attrs[ATTR.attempt]))]);
        expect(c.attrs).toMatchObject({ [ATTR.site]: 'sakai', [ATTR.token]: first.token });
        expect(typeof c.attrs[ATTR.workerId]).toBe('string');
      }
      // One span per chunk attempt, never per record: each (attempt, chunk, delivery) once, and a bounded count.
      const keys = chunks.map(
        (c) => `${c.attrs[ATTR.attempt]}/${c.attrs[ATTR.chunk]}/${c.attrs[ATTR.receiveCount]}`,
      );
      expect(new Set(keys).size).toBe(keys.length);
      const chunkCount = (name: string) =>
        Number(spans.find((s) => s.name === name)?.attrs[ATTR.chunks] ?? 0);
      const workers = new Set(spans.filter((s) => s.name === 'rowfleet.worker.start').map((s) => s.spanId))
        .size;
      const bound =
        (chunkCount('rowfleet.split') + chunkCount('rowfleet.attempt')) * MAX_CHUNK_ATTEMPTS + workers + 10;
      expect(spans.length).toBeLessThanOrEqual(bound);
      expect(spans.length).toBeLessThan(records / 20);

      // And the timeline of the current attempt (2) reads the same store, its lanes from the attempt's chunks.
      expect(timeline).toMatchObject({ token, attempt: 2, state: 'SUCCEEDED' });
      expect(timeline.phases.finalize?.seconds).toBeGreaterThan(0);
      expect(timeline.lanes.flatMap((l) => l.bars).some((b) => b.jobAttempt === 2)).toBe(true);
      expect(printed.code, printed.stderr).toBe(0);
      expect(printed.stdout).toContain(`job ${token} (sakai, attempt 2): SUCCEEDED`);
      expect(printed.stdout).toMatch(/^ {2}finalize\s+\d+\.\d s/m);
    },
  );
});
