/**
 * SQS delivers a chunk twice at the same time, and the processor answers the second delivery differently (an API
 * that refused a row once and took it the next time). The first delivery to store its part is the chunk's answer:
 * the second neither replaces that part nor counts, so the job's counts, its errors.csv and its zip agree. Before
 * parts were stored with a conditional write, the second delivery overwrote the counted part and the job ended
 * FAILED COUNTS_DISAGREE.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../../../config/env.ts';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { withAdapters } from '../../../helpers/faults.ts';
import { parseErrorsCsv } from '../../../helpers/jepsen.ts';
import { csvOf, drainFinalizeRequests } from '../../../helpers/pipeline-jobs.ts';
import { readZipText } from '../../../helpers/zip.ts';

const aws = useTestAws();
const TYPES = fileURLToPath(new URL('../../../../core/processors/types.ts', import.meta.url));
let dir: string;
const saved = process.env[ENV.processorsDir];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-varies-'));
  // Refuses record 1 the first time it is asked (a permanent error: not retried in that delivery), takes it after.
  writeFileSync(
    join(dir, 'varies.ts'),
    `import { RecordError } from ${JSON.stringify(TYPES)};
const asked = new Map<number, number>();
export default {
  name: 'varies',
  description: 'refuses record 1 once',
  concurrency: 4,
  process(row: { n: number }) {
    const times = (asked.get(row.n) ?? 0) + 1;
    asked.set(row.n, times);
    if (row.n === 1 && times === 1) throw new RecordError('UPSTREAM_REFUSED', 'refused this time');
    return [{ name: 'out/' + row.n + '.json', data: JSON.stringify({ n: row.n, times }) }];
  },
};
`,
  );
  process.env[ENV.processorsDir] = dir;
});

afterAll(() => {
  if (saved === undefined) delete process.env[ENV.processorsDir];
  else process.env[ENV.processorsDir] = saved;
  rmSync(dir, { recursive: true, force: true });
});

describe('Worker: a chunk delivered twice at once, answered differently', () => {
  it('keeps the first stored part and its count; the second delivery changes nothing', async () => {
    // Prepare: a one-chunk job of 3 records
    const deps = testDeps(aws, { launcher: new RecordingLauncher() });
    const view = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(3)), {
      processor: 'varies',
      workers: 1,
    });
    const job = (await deps.jobs.get('sakai', view.token))!;
    expect(job.totalChunks).toBe(1);
    const queueUrl = (await deps.queues.queueUrl(job.queueName!))!;
    const isPart = (key: string) => key.includes('/parts/');
    let received!: () => void;
    const bReceived = new Promise<void>((r) => (received = r));
    let counted!: () => void;
    const aCounted = new Promise<void>((r) => (counted = r));
    const options = { site: 'sakai', token: view.token, waitSeconds: 0, idlePolls: 2, visibilitySeconds: 30 };
    // B: the duplicate. Its records run after A's (record 1 is taken this time); it stores its part after A counted.
    const bStoresAfterA = async <T>(call: () => Promise<T>, key: string) => {
      if (isPart(key)) await aCounted;
      return call();
    };
    const b = withAdapters(deps, {
      queues: {
        around: {
          receive: async (call) => {
            const ms = (await call()) as Message[];
            if (ms.length > 0) received();
            return ms;
          },
        },
      },
      objects: { around: { put: bStoresAfterA, putNew: bStoresAfterA } },
    });
    let bRun: ReturnType<typeof runWorker> | undefined;
    // A: when it is about to store its part, SQS delivers the chunk's message again and worker B takes it.
    const aDeliversTwice = async <T>(call: () => Promise<T>, key: string) => {
      if (isPart(key) && !bRun) {
        const [m] = await deps.queues.receive(queueUrl, { max: 1, waitSeconds: 0, visibilitySeconds: 0 });
        expect(m).toBeUndefined(); // A holds the only copy
        await deps.queues.sendBatch(queueUrl, 'sakai', view.token, [aBody]);
        bRun = runWorker(b, options);
        await bReceived;
      }
      return call();
    };
    let aBody = '';
    const a = withAdapters(deps, {
      queues: {
        around: {
          receive: async (call) => {
            const ms = (await call()) as Message[];
            aBody ||= ms[0]?.Body ?? '';
            return ms;
          },
        },
      },
      objects: { around: { put: aDeliversTwice, putNew: aDeliversTwice } },
      jobs: {
        around: {
          countChunk: async (call) => {
            const r = await call();
            counted();
            return r;
          },
        },
      },
    });

    // Act
    const first = await runWorker(a, options);
    const second = await bRun!;
    await drainFinalizeRequests(deps);
    const finished = await finalizeJob(deps, 'sakai', view.token);

    // Assess
    expect(first.chunks).toBe(1);
    expect(second).toMatchObject({ chunks: 0, duplicates: 1 });
    const done = (await deps.jobs.get('sakai', view.token))!;
    expect(finished.state).toBe('PARTIAL');
    expect({ succeeded: done.succeeded, failed: done.failed }).toEqual({ succeeded: 2, failed: 1 });
    const zip = await readZipText(await deps.objects.bytes(done.resultKey!));
    expect(parseErrorsCsv(zip.get('errors.csv')!).map((e) => [e.n, e.code])).toEqual([
      [1, 'UPSTREAM_REFUSED'],
    ]);
    expect([...zip.keys()].filter((k) => k.startsWith('out/')).sort()).toEqual(['out/2.json', 'out/3.json']);
  }, 60_000);
});
