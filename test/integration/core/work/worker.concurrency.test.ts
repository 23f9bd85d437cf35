/**
 * The worker's guarantees with many records in flight (issue 8): the heartbeat keeps a long chunk hidden while
 * its records run concurrently; a stop aborts the records in flight and gives the chunk back; the give-up of a
 * chunk with side effects never reports a sent record as failed (which `rowfleet retry` would send again).
 */
import { describe, expect, it } from 'vitest';
import type { Message } from '@aws-sdk/client-sqs';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { decodeChunk } from '../../../../core/messages/chunk.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { RECORD_HEADER } from '../../../../core/processors/mail.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { pastLastAttempt, withAdapters } from '../../../helpers/faults.ts';
import { parseErrorsCsv } from '../../../helpers/jepsen.ts';
import { csvOf } from '../../../helpers/pipeline-jobs.ts';
import { readZipText } from '../../../helpers/zip.ts';
import { fetchEmulatorPage } from '../../../../local/emulator-gate.ts';

const aws = useTestAws();

/** The rows of the job mailed so far, as the SES emulator holds them (one per mail, by its record header). */
async function mailedRows(token: string): Promise<number[]> {
  const store = (await (await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`)).json()) as {
    emails: { headers?: { name: string; value: string }[] }[];
  };
  return store.emails
    .map((m) => m.headers?.find((h) => h.name === RECORD_HEADER)?.value ?? '')
    .filter((k) => k.includes(token))
    .map((k) => Number(k.split('#')[2]));
}

describe('Worker: many records in flight', () => {
  it('keeps each chunk hidden while its records run (heartbeat): every chunk is received once', async () => {
    // Prepare: 200 records × 200 ms, 4 in flight: chunks of 50-75 records take 5 s or more, visibility is 2 s
    const launcher = new RecordingLauncher();
    const base = testDeps(aws, { launcher });
    const deps = { ...base, timings: { ...base.timings, chunkTargetSeconds: 30 } };
    const view = await startDirectJob(deps, 'kashima', Buffer.from(csvOf(200)), {
      processor: 'json',
      workers: 1,
      concurrency: 4,
      simulateDelayMs: 200,
    });
    const receives = new Map<number, number>();
    const counting = withAdapters(deps, {
      queues: {
        around: {
          receive: async (call) => {
            const ms = (await call()) as Message[];
            for (const m of ms) {
              const c = decodeChunk(m.Body ?? '').chunk;
              receives.set(c, (receives.get(c) ?? 0) + 1);
            }
            return ms;
          },
        },
      },
    });

    // Act
    const summary = await runWorker(counting, {
      site: 'kashima',
      token: view.token,
      waitSeconds: 0,
      idlePolls: 3,
      visibilitySeconds: 2,
    });

    // Assess
    const job = await deps.jobs.get('kashima', view.token);
    expect(receives.size).toBe(job!.totalChunks);
    expect([...receives.values()].every((r) => r === 1)).toBe(true);
    expect(summary).toMatchObject({
      chunks: job!.totalChunks,
      duplicates: 0,
      records: 200,
      concurrency: { bound: 4, peak: 4 },
    });
    expect(job!.succeeded).toBe(200);
  }, 60_000);

  it("takes its next chunk once every record of one has started, while that chunk's last records still run", async () => {
    // Prepare: 60 records × 200 ms, 4 in flight, chunks of 15 (four per worker), two in hand: a chunk's last
    // records run 200 ms after its last one started
    const launcher = new RecordingLauncher();
    const base = testDeps(aws, { launcher });
    const deps = { ...base, timings: { ...base.timings, chunkTargetSeconds: 2 } };
    const view = await startDirectJob(deps, 'kashima', Buffer.from(csvOf(60)), {
      processor: 'json',
      workers: 1,
      concurrency: 4,
      simulateDelayMs: 200,
    });
    const events: string[] = [];
    const watched = withAdapters(deps, {
      queues: {
        around: {
          receive: async (call) => {
            const ms = (await call()) as Message[];
            for (const m of ms) events.push(`received ${decodeChunk(m.Body ?? '').chunk}`);
            return ms;
          },
        },
      },
      jobs: {
        around: {
          countChunk: async (call, ...args) => {
            events.push(`counted ${String(args[2])}`);
            return call();
          },
        },
      },
    });

    // Act
    const summary = await runWorker(watched, {
      site: 'kashima',
      token: view.token,
      waitSeconds: 0,
      idlePolls: 3,
    });

    // Assess: the third chunk came before either of the first two was done (it used to wait for one of them)
    const job = await deps.jobs.get('kashima', view.token);
    expect(job!.totalChunks).toBe(4);
    expect(summary).toMatchObject({ chunks: 4, duplicates: 0, records: 60 });
    expect(events.slice(0, 3)).toEqual(['received 0', 'received 1', 'received 2']);
    expect(job!.succeeded).toBe(60);
  }, 60_000);

  it("gives a stopped worker's chunk back, and a given-up chunk keeps what its claims know (mail)", async () => {
    // Prepare: one chunk of 40 rows, 300 ms each, 8 in flight
    const launcher = new RecordingLauncher();
    const base = testDeps(aws, { launcher });
    const deps = { ...base, timings: { ...base.timings, chunkTargetSeconds: 60 } };
    const csv = [
      'id,氏名,品目,数量,受注日,email',
      ...Array.from({ length: 40 }, (_, i) => `${i + 1},客${i + 1},鋼板,1,2026-11-20,c${i + 1}@example.com`),
    ];
    const view = await startDirectJob(deps, 'marifu', Buffer.from(csv.join('\n')), {
      processor: 'mail',
      workers: 1,
      concurrency: 8,
      simulateDelayMs: 300,
    });
    const stop = new AbortController();
    // Stopped once 8 rows were mailed (about 1 s), not at a fixed time: a loaded machine may send its first later.
    const watching = (async () => {
      while (!stop.signal.aborted) {
        if ((await mailedRows(view.token)).length >= 8) stop.abort(new Error('stop now'));
        else await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // Act: a worker stopped after 8 rows were mailed; then its chunk comes to a worker as a last attempt (given up)
    const stopped = await runWorker(deps, {
      site: 'marifu',
      token: view.token,
      waitSeconds: 0,
      idlePolls: 3,
      visibilitySeconds: 30,
      abortRecords: stop.signal,
    });
    const lastAttempt = pastLastAttempt(deps);
    const gaveUp = await runWorker(lastAttempt, {
      site: 'marifu',
      token: view.token,
      waitSeconds: 0,
      idlePolls: 3,
      visibilitySeconds: 30,
    });
    if (!stop.signal.aborted) stop.abort(new Error('the worker ended before the stop')); // fails below
    await watching;
    const finished = await finalizeJob(deps, 'marifu', view.token);

    // Assess: some rows were sent before the stop, none after; each sent row is a success, the rest failed
    expect(stopped.reason).toBe('stopped');
    expect(stopped.chunks).toBe(0);
    expect(gaveUp.chunks).toBe(1);
    const job = (await deps.jobs.get('marifu', view.token))!;
    const zip = await readZipText(await deps.objects.bytes(job.resultKey!));
    const errors = parseErrorsCsv(zip.get('errors.csv')!);
    const mailed = await mailedRows(view.token);
    const sent = [...zip.keys()].filter((k) => k.startsWith('mail/')).map((k) => Number(/\d+/.exec(k)![0]));
    expect(finished.state).toBe('PARTIAL');
    expect(mailed.length).toBeGreaterThan(0);
    expect(new Set(mailed).size).toBe(mailed.length);
    // Every success was mailed; a mail whose send the stop aborted after SES took it is IN_DOUBT (it may have gone)
    const inDoubt = errors.filter((e) => e.code === 'IN_DOUBT').map((e) => e.n);
    expect(sent.every((n) => mailed.includes(n))).toBe(true);
    expect(mailed.filter((n) => !sent.includes(n)).every((n) => inDoubt.includes(n))).toBe(true);
    expect(errors.every((e) => e.code === 'CHUNK_FAILED' || e.code === 'IN_DOUBT')).toBe(true);
    expect(errors.filter((e) => mailed.includes(e.n) && e.code === 'CHUNK_FAILED')).toEqual([]);
    expect(sent.length + errors.length).toBe(40);
    expect({ succeeded: job.succeeded, failed: job.failed }).toEqual({
      succeeded: sent.length,
      failed: errors.length,
    });
  }, 60_000);
});
