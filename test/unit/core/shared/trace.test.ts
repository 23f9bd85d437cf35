import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import {
  ATTR,
  attemptTraceparent,
  currentTraceparent,
  endJobSpan,
  formatTraceparent,
  jobAttrs,
  newJobTraceparent,
  parseTraceparent,
  startJobSpan,
  startSpan,
  traceparentOf,
  Tracing,
} from '../../../../core/shared/trace.ts';
import { JobFileExporter, readSpans, traceFile } from '../../../../core/shared/trace-file.ts';

const W3C_EXAMPLE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const SITE = 'sakai';
const TOKEN = '3f1c2b9e-8a4d-4c1e-9f7a-2b6d5e4c3a21';

describe('trace context', () => {
  it('parses and formats the W3C example, and refuses malformed or all-zero ids', () => {
    const sc = parseTraceparent(W3C_EXAMPLE)!;
    expect(sc).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      isRemote: true,
    });
    expect(formatTraceparent(sc)).toBe(W3C_EXAMPLE);
    for (const bad of [
      undefined,
      '',
      '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
    ])
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
  });

  it("gives a job a sampled context, and a retry's attempt a new span in the same trace", () => {
    const job = newJobTraceparent();
    const a2 = attemptTraceparent(job)!;
    expect(parseTraceparent(job)!.traceFlags).toBe(1);
    expect(parseTraceparent(a2)!.traceId).toBe(parseTraceparent(job)!.traceId);
    expect(parseTraceparent(a2)!.spanId).not.toBe(parseTraceparent(job)!.spanId);
    expect(attemptTraceparent(undefined)).toBeUndefined();
    const base = { site: SITE, token: TOKEN, trace: job };
    expect(currentTraceparent(base)).toBe(job);
    expect(currentTraceparent({ ...base, attempt: 2, attempts: [{ n: 1 }, { n: 2, trace: a2 }] })).toBe(a2);
  });
});

function tracing() {
  const exporter = new InMemorySpanExporter();
  return { exporter, tracing: new Tracing(exporter, { service: 'test' }) };
}

describe('Tracing', () => {
  it('emits the job span at the end with the ids chosen at upload, its children exported before it', async () => {
    const { exporter, tracing: t } = tracing();
    const tp = newJobTraceparent();
    const ids = parseTraceparent(tp)!;
    const job = { site: SITE, token: TOKEN, trace: tp, receivedAt: '2026-12-07T00:00:00.000Z' };
    const split = startSpan(t, 'rowfleet.split', tp, jobAttrs(job));
    split.end();
    endJobSpan(t, { ...job, succeeded: 3, failed: 1, rejected: 0, totalRecords: 4 }, 'PARTIAL', new Date());
    await t.flush();
    const [s, j] = exporter.getFinishedSpans();
    expect(s!.parentSpanContext?.spanId).toBe(ids.spanId);
    expect(j!.name).toBe('rowfleet.job');
    expect(j!.spanContext()).toMatchObject({ traceId: ids.traceId, spanId: ids.spanId });
    expect(j!.parentSpanContext).toBeUndefined();
    expect(j!.attributes).toMatchObject({
      [ATTR.site]: SITE,
      [ATTR.token]: TOKEN,
      [ATTR.outcome]: 'PARTIAL',
    });
    expect(j!.startTime[0]).toBe(Date.parse(job.receivedAt) / 1000);
  });

  it("emits a retry's attempt span under the job span with its pinned id", async () => {
    const { exporter, tracing: t } = tracing();
    const tp = newJobTraceparent();
    const a2 = attemptTraceparent(tp)!;
    endJobSpan(
      t,
      {
        site: SITE,
        token: TOKEN,
        trace: tp,
        attempt: 2,
        attempts: [{ n: 2, trace: a2, startedAt: '2026-12-07T00:01:00.000Z' }],
        receivedAt: '2026-12-07T00:00:00.000Z',
        succeeded: 4,
        failed: 0,
      },
      'SUCCEEDED',
      new Date(),
    );
    await t.flush();
    const [a] = exporter.getFinishedSpans();
    expect(a!.name).toBe('rowfleet.attempt');
    expect(a!.spanContext().spanId).toBe(parseTraceparent(a2)!.spanId);
    expect(a!.parentSpanContext?.spanId).toBe(parseTraceparent(tp)!.spanId);
  });

  it("hangs a step's span of a job from its current attempt, with the job's attributes and the step's", async () => {
    // Prepare: a job at its second attempt
    const { exporter, tracing: t } = tracing();
    const tp = newJobTraceparent();
    const a2 = attemptTraceparent(tp)!;
    const job = { site: SITE, token: TOKEN, trace: tp, attempt: 2, attempts: [{ n: 2, trace: a2 }] };

    // Act
    startJobSpan(t, 'rowfleet.split', job, { attrs: { [ATTR.workers]: 3 }, startTime: 1000 }).end();
    await t.flush();

    // Assess
    const [s] = exporter.getFinishedSpans();
    expect(s!.parentSpanContext?.spanId).toBe(parseTraceparent(a2)!.spanId);
    expect(s!.attributes).toMatchObject({
      [ATTR.site]: SITE,
      [ATTR.token]: TOKEN,
      [ATTR.attempt]: 2,
      [ATTR.workers]: 3,
    });
    expect(s!.startTime[0]).toBe(1);
  });

  it('records nothing for a job without a context or tracing off, and links given contexts', async () => {
    const { exporter, tracing: t } = tracing();
    const none = startSpan(t, 'x', undefined, {});
    expect(none.isRecording()).toBe(false);
    expect(traceparentOf(none)).toBeUndefined();
    expect(startSpan(undefined, 'x', newJobTraceparent(), {}).isRecording()).toBe(false);
    const unsampled = W3C_EXAMPLE.replace(/-01$/, '-00');
    expect(startSpan(t, 'x', unsampled, {}).isRecording()).toBe(false);
    const worker = startSpan(t, 'w', W3C_EXAMPLE, {});
    const chunk = startSpan(t, 'c', worker.spanContext(), {}, { links: [W3C_EXAMPLE, 'junk'] });
    chunk.end();
    worker.end();
    await t.flush();
    const c = exporter.getFinishedSpans().find((s) => s.name === 'c')!;
    expect(c.parentSpanContext?.spanId).toBe(worker.spanContext().spanId);
    expect(c.links.map((l) => l.context.spanId)).toEqual(['b7ad6b7169203331']);
  });
});

describe('JobFileExporter', () => {
  it("writes each span to its job's file and reads back only that site's and job's spans", async () => {
    const root = mkdtempSync(join(tmpdir(), 'rowfleet-traces-'));
    const t = new Tracing(new JobFileExporter(root), { service: 'test' });
    const tp = newJobTraceparent();
    const other = '0c2f7e55-1111-4222-8333-944455556666';
    startSpan(t, 'a', tp, jobAttrs({ site: SITE, token: TOKEN })).end();
    startSpan(t, 'b', tp, jobAttrs({ site: 'kobe', token: other })).end();
    // Neither a path-escaping site nor one without a token is written anywhere.
    startSpan(t, 'c', tp, jobAttrs({ site: '../etc', token: TOKEN })).end();
    startSpan(t, 'd', tp, { [ATTR.site]: SITE }).end();
    await t.shutdown();
    expect(readdirSync(root).sort()).toEqual(['kobe', SITE]);
    expect((await readSpans(root, SITE, TOKEN)).map((s) => s.name)).toEqual(['a']);
    expect(await readSpans(root, SITE, other)).toEqual([]);
    expect(await readSpans(root, 'kobe', TOKEN)).toEqual([]);
    const line = JSON.parse(readFileSync(traceFile(root, SITE, TOKEN)!, 'utf8').split('\n')[0]!) as {
      parentSpanId: string;
    };
    expect(line.parentSpanId).toBe(parseTraceparent(tp)!.spanId);
    expect(traceFile(root, '../x', TOKEN)).toBeUndefined();
    expect(traceFile(root, SITE, '../../../../x')).toBeUndefined();
  });
});
