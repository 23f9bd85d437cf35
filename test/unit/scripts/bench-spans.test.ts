import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { JobFileExporter } from '../../../core/shared/trace-file.ts';
import { jobAttrs, newJobTraceparent, startSpan, Tracing } from '../../../core/shared/trace.ts';
import { benchTracing, jobPhases, type PhaseJob } from '../../../scripts/bench-spans.ts';
import { tempDirs } from '../../helpers/temp.ts';

const newDir = tempDirs();
const t0 = Date.parse('2026-12-07T00:00:00.000Z');
const at = (s: number) => new Date(t0 + s * 1000);

const job: PhaseJob = {
  site: 'sakai',
  token: '3f1c2b9e-8a4d-4c1e-9f7a-2b6d5e4c3a21',
  state: 'SUCCEEDED',
  receivedAt: at(0.2).toISOString(),
  splitStartedAt: at(1).toISOString(),
  splitDoneAt: at(2.5).toISOString(),
  finalizingAt: at(10).toISOString(),
  finishedAt: at(14).toISOString(),
};

/** The job's split and finalize spans in the state directory's span store, at other times than its timestamps. */
async function writeSpans(stateDir: string): Promise<void> {
  const t = new Tracing(new JobFileExporter(join(stateDir, 'traces')), { service: 'test' });
  const trace = newJobTraceparent();
  const attrs = jobAttrs(job);
  startSpan(t, 'rowfleet.split', trace, attrs, { startTime: at(1.5) }).end(at(3));
  startSpan(t, 'rowfleet.finalize', trace, attrs, { startTime: at(11) }).end(at(13.5));
  await t.shutdown();
}

describe('the bench’s --tracing and its phases', () => {
  it('takes file (a user’s local runtime) by default and off, nothing else', () => {
    expect(benchTracing(undefined)).toBe('file');
    expect(benchTracing('file')).toBe('file');
    expect(benchTracing('off')).toBe('off');
    expect(() => benchTracing('on')).toThrow(/file or off, not "on"/);
  });

  it('reads the phases from the job’s spans when tracing was on', async () => {
    const stateDir = await newDir('rowfleet-bench-spans-');
    await writeSpans(stateDir);
    const p = await jobPhases(stateDir, job, t0, t0 + 15_000, 'file');
    expect(p.source).toBe('spans');
    // The download runs from the job's end (its finishedAt) to the run's.
    expect(p.seconds).toMatchObject({ uploadAndEvent: 1.5, split: 1.5, finalize: 2.5, download: 1 });
  });

  it('reads them from the job’s timestamps with tracing off, or when no span was recorded', async () => {
    const stateDir = await newDir('rowfleet-bench-spans-');
    const fromTimestamps = {
      source: 'timestamps',
      seconds: {
        uploadAndEvent: 1,
        split: 1.5,
        workersAfterSplit: 7.5,
        finalize: 4,
        download: 1,
      },
    };
    expect(await jobPhases(stateDir, job, t0, t0 + 15_000, 'file')).toEqual(fromTimestamps);
    // Spans left in the store do not count for a run that had tracing off.
    await writeSpans(stateDir);
    expect(await jobPhases(stateDir, job, t0, t0 + 15_000, 'off')).toEqual(fromTimestamps);
  });
});
