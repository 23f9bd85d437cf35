import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PipelineDeps } from '../../../../core/deps.ts';
import { timelineView } from '../../../../core/intake/timeline.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import { buildTimeline } from '../../../../core/shared/timeline.ts';
import { formatTimeline } from '../../../../cli/trace.ts';
import { fileTraceStore, JobFileExporter, traceFile } from '../../../../core/shared/trace-file.ts';
import {
  ATTR,
  endJobSpan,
  jobAttrs,
  newJobTraceparent,
  parseTraceparent,
  startSpan,
  Tracing,
} from '../../../../core/shared/trace.ts';

const T = '3f1c2b9e-8a4d-4c1e-9f7a-2b6d5e4c3a21';
const t0 = Date.parse('2026-12-07T00:00:00.000Z');
const at = (s: number) => new Date(t0 + s * 1000);

function job(site: string, over: Partial<Job> = {}): Job {
  return {
    site,
    token: T,
    state: 'PARTIAL',
    processor: 'report',
    sourceKey: 'k',
    upload: 'direct',
    chunksDone: 3,
    succeeded: 29,
    failed: 1,
    receivedAt: at(0).toISOString(),
    finishedAt: at(20).toISOString(),
    trace: newJobTraceparent(),
    ...over,
  };
}

/** A job's spans as the pipeline writes them: split, queue wait, two workers, a chunk retried, finalize and zip. */
async function writeJobSpans(root: string, j: Job): Promise<void> {
  const t = new Tracing(new JobFileExporter(root), { service: 'test' });
  const attrs = jobAttrs(j);
  startSpan(t, 'rowfleet.split', j.trace, attrs, { startTime: at(0.5) }).end(at(2));
  startSpan(t, 'rowfleet.queued', j.trace, attrs, { startTime: at(2) }).end(at(5));
  for (const [w, ready] of [
    ['local-1', 6],
    ['local-2', 7],
  ] as const) {
    const lane = startSpan(
      t,
      'rowfleet.worker.start',
      j.trace,
      { ...attrs, [ATTR.workerId]: w },
      {
        startTime: at(5.2),
      },
    );
    lane.end(at(ready));
    const chunks: [number, number, number, number, string][] =
      w === 'local-1'
        ? [
            [0, 1, 6, 9, 'done'],
            [2, 1, 9, 10, 'retried'],
          ]
        : [
            [1, 1, 7, 11, 'done'],
            [2, 2, 12, 15, 'gaveUp'],
          ];
    for (const [chunk, receive, s, e, outcome] of chunks) {
      const span = startSpan(
        t,
        'rowfleet.chunk',
        lane.spanContext(),
        {
          ...attrs,
          [ATTR.workerId]: w,
          [ATTR.chunk]: chunk,
          [ATTR.receiveCount]: receive,
          [ATTR.records]: 10,
        },
        { startTime: at(s), links: [j.trace] },
      );
      span.setAttribute(ATTR.outcome, outcome);
      span.end(at(e));
    }
  }
  const fin = startSpan(t, 'rowfleet.finalize', j.trace, attrs, { startTime: at(16) });
  startSpan(t, 'rowfleet.zip', fin.spanContext(), attrs, { startTime: at(17) }).end(at(19));
  fin.end(at(19.5));
  endJobSpan(t, j, j.state, at(20));
  await t.shutdown();
}

const depsOf = (jobs: Job[], root?: string) =>
  ({
    jobs: {
      get: (site: string, token: string) =>
        Promise.resolve(jobs.find((x) => x.site === site && x.token === token)),
    },
    ...(root ? { traces: fileTraceStore(root) } : {}),
  }) as unknown as PipelineDeps;

describe('Timeline', () => {
  it('draws phases, one lane per worker and a bar per chunk attempt, retries and give-ups marked', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rowfleet-timeline-'));
    const j = job('sakai');
    await writeJobSpans(root, j);

    const tl = await timelineView(depsOf([j], root), 'sakai', T);

    expect(tl.traceId).toBe(parseTraceparent(j.trace)!.traceId);
    expect(tl.phases.split).toEqual({ start: at(0.5).toISOString(), end: at(2).toISOString(), seconds: 1.5 });
    expect(tl.phases.queueWait?.seconds).toBe(3);
    // From the grant to the last chunk attempt's end.
    expect(tl.phases.workers).toMatchObject({
      start: at(5).toISOString(),
      end: at(15).toISOString(),
      seconds: 10,
    });
    expect(tl.phases.finalize?.seconds).toBe(3.5);
    expect(tl.zip?.seconds).toBe(2);
    expect(tl.endsAt).toBe(at(20).toISOString());
    expect(tl.lanes.map((l) => l.worker)).toEqual(['local-1', 'local-2']);
    expect(tl.lanes[0]!.started?.seconds).toBe(0.8);
    expect(tl.lanes.map((l) => l.bars.map((b) => `${b.chunk}/${b.attempt}:${b.outcome}`))).toEqual([
      ['0/1:done', '2/1:retried'],
      ['1/1:done', '2/2:gaveUp'],
    ]);
    expect(tl.spans).toBe(11);
  });

  it('prints the same breakdown in a terminal: phases in seconds, a line per worker with its chunk bars', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rowfleet-timeline-'));
    const j = job('sakai');
    await writeJobSpans(root, j);
    const tl = await timelineView(depsOf([j], root), 'sakai', T);

    const lines = formatTimeline(tl, 20).split('\n');

    expect(lines[0]).toContain(`job ${T} (sakai): PARTIAL, 20.0 s`);
    expect(lines.find((l) => l.trim().startsWith('split'))).toMatch(/1\.5 s\s+8%\s+\|\s*S+\s*\|/);
    expect(lines.find((l) => l.trim().startsWith('finalize'))).toContain('(zip 2.0 s)');
    expect(lines.find((l) => l.startsWith('workers:'))).toContain(
      'chunk attempts: 4 (1 retried, 1 given up)',
    );
    // One column = 1 s: worker 1 did chunk 0 in 6–9 s and failed chunk 2 in 9–10 s; worker 2 gave chunk 2 up at 12–15 s.
    expect(lines.find((l) => l.includes('local-1'))).toContain('|      ###~~         |');
    expect(lines.find((l) => l.includes('local-2'))).toContain('|       #####XXXX    |');
  });

  it("never shows a caller of one site another site's job or spans", async () => {
    const root = mkdtempSync(join(tmpdir(), 'rowfleet-timeline-'));
    const a = job('sakai');
    await writeJobSpans(root, a);
    // Site kobe has a job under the same token (tokens are UUIDs: only a forged one could) and a planted line.
    const b = job('kobe', { state: 'RUNNING', finishedAt: undefined });
    mkdirSync(join(root, 'kobe'), { recursive: true });
    appendFileSync(
      traceFile(root, 'kobe', T)!,
      JSON.stringify({
        v: 1,
        traceId: 'a'.repeat(32),
        spanId: 'b'.repeat(16),
        name: 'rowfleet.chunk',
        kind: 4,
        start: t0,
        end: t0,
        status: { code: 0 },
        attrs: { [ATTR.site]: 'sakai', [ATTR.token]: T, [ATTR.workerId]: 'x', [ATTR.outcome]: 'done' },
        links: [],
      }) + '\n',
    );

    await expect(timelineView(depsOf([a], root), 'kobe', T)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const other = await timelineView(depsOf([a, b], root), 'kobe', T);
    expect(other).toMatchObject({ site: 'kobe', spans: 0, lanes: [], phases: {} });
  });

  it('answers 404 TIMELINE_NOT_LOCAL naming the trace where no span store is (AWS)', async () => {
    const j = job('sakai');
    await expect(timelineView(depsOf([j]), 'sakai', T)).rejects.toMatchObject({
      code: 'TIMELINE_NOT_LOCAL',
      status: 404,
      message: expect.stringContaining(parseTraceparent(j.trace)!.traceId) as unknown,
    });
    await expect(timelineView(depsOf([j]), 'sakai', 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('shows a running job live: an open workers phase, and the wait so far while it is QUEUED', () => {
    const running = buildTimeline(
      { ...job('sakai'), state: 'QUEUED', finishedAt: undefined, queuedAt: at(2).toISOString() },
      [],
    );
    expect(running.endsAt).toBeUndefined();
    expect(running.phases.queueWait).toEqual({ start: at(2).toISOString() });
  });
});
