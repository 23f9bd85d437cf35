/**
 * A zip entry name taken by records of two chunks, on the embedded emulators: the finalize keeps the first
 * record's entry, fails the later record with ZIP_ENTRY_NAME (its line and text in errors.csv) and counts it as
 * failed, so the zip never holds a name twice and succeeded + failed + rejected = total still holds.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { keys } from '../../../../core/jobs/keys.ts';
import { NAME_HASH } from '../../../../core/jobs/store.ts';
import type { ChunkMessage } from '../../../../core/messages/chunk.ts';
import { splitPart } from '../../../../core/messages/part.ts';
import type { PipelineDeps } from '../../../../core/deps.ts';
import { readRecordBatches } from '../../../../core/source/csv.ts';
import { processChunk } from '../../../../core/work/process-chunk.ts';
import type { RowProcessor } from '../../../../core/processors/types.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { readZip } from '../../../helpers/zip.ts';
import { drainFinalizeRequests } from '../../../helpers/pipeline-jobs.ts';

const aws = useTestAws();
let launcher: RecordingLauncher;
let deps: PipelineDeps;

beforeAll(() => {
  launcher = new RecordingLauncher();
  deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 10 } });
});

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** 25 records `n,name n`; record 11's name holds a lone LF (Excel's Alt+Enter). */
function csv(): string {
  const lines = ['id,name'];
  for (let n = 1; n <= 25; n++) lines.push(n === 11 ? '11,"name\n11"' : `${n},name ${n}`);
  return lines.join('\r\n') + '\r\n';
}

describe('Function: finalizeJob (entry names across chunks)', () => {
  it.each([
    ['hashed as its job says', false],
    // A worker started from the image before a deploy that changed the hash, working for a job created after it.
    ['hashed by an older worker (SHA-256, no nameHash in its meta)', true],
  ])(
    'fails a record of a later chunk whose output takes a name an earlier chunk took, and writes the name once (the later part %s)',
    async (_label, olderWorker) => {
      // Prepare: the job runs with `json`; chunk 1 (records 11-20) is then redone by a processor naming record 11's
      // output rows/1.json, the name record 1 (chunk 0) took.
      const view = await startDirectJob(deps, 'sakai', Buffer.from(csv()), { processor: 'json' });
      const count = launcher.launches.filter((l) => l.token === view.token).reduce((n, l) => n + l.count, 0);
      await Promise.all(
        Array.from({ length: count }, () =>
          runWorker(deps, {
            site: 'sakai',
            token: view.token,
            waitSeconds: 0,
            idlePolls: 2,
            visibilitySeconds: 30,
          }),
        ),
      );
      const job = (await deps.jobs.get('sakai', view.token))!;
      const partKey = keys.part('sakai', view.token, 1);
      const { meta } = splitPart(await deps.objects.bytes(partKey));
      const records: [number, number, string[]][] = [];
      for await (const batch of readRecordBatches(once(Buffer.from(csv())), {
        maxRecordBytes: 1 << 20,
      }))
        for (const e of batch)
          if (e.kind === 'record' && e.n >= 11 && e.n <= 20) records.push([e.n, e.line, e.fields]);
      const colliding: RowProcessor = {
        name: 'colliding',
        description: 'names record 11 as record 1',
        process: (row) => [
          { name: row.n === 11 ? 'rows/1.json' : `rows/${row.n}.json`, data: `{"n":${row.n}}` },
        ],
      };
      const msg: ChunkMessage = {
        v: 2,
        site: 'sakai',
        token: view.token,
        chunk: meta.chunk,
        key: job.sourceKey,
        start: 0,
        end: 1,
        n: 11,
        line: 12,
        records: 10,
      };
      expect(job.nameHash).toBe(NAME_HASH);
      const { nameHash: _hash, ...olderJob } = job;
      const redone = await processChunk(olderWorker ? olderJob : job, msg, records, colliding);
      expect(splitPart(redone.part).meta.nameHash).toBe(olderWorker ? undefined : NAME_HASH);
      await deps.objects.put(partKey, redone.part, 'application/octet-stream');

      // Act
      for (const r of await drainFinalizeRequests(deps)) await finalizeJob(deps, r.site, r.token);

      // Assess
      const done = (await deps.jobs.get('sakai', view.token))!;
      expect({ state: done.state, succeeded: done.succeeded, failed: done.failed }).toEqual({
        state: 'PARTIAL',
        succeeded: 24,
        failed: 1,
      });
      const files = await readZip(await deps.objects.bytes(done.resultKey!));
      const names = files.map((f) => f.name);
      expect(names.filter((n) => n === 'rows/1.json')).toHaveLength(1);
      expect(JSON.parse(files.find((f) => f.name === 'rows/1.json')!.data.toString('utf8'))).toMatchObject({
        id: '1',
      });
      expect(names).not.toContain('rows/11.json');
      expect(names.filter((n) => n.startsWith('rows/'))).toHaveLength(24);
      const manifest = JSON.parse(files.find((f) => f.name === 'manifest.json')!.data.toString('utf8')) as {
        counts: Record<string, number>;
      };
      expect(manifest.counts).toEqual({ total: 25, succeeded: 24, failed: 1, rejected: 0 });
      const rows: string[][] = [];
      for await (const batch of readRecordBatches(
        once(files.find((f) => f.name === 'errors.csv')!.data.subarray(3)),
        { maxRecordBytes: 1 << 20 },
      ))
        for (const e of batch) if (e.kind === 'record') rows.push(e.fields);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.slice(0, 3)).toEqual(['12', '11', 'ZIP_ENTRY_NAME']);
      expect(rows[0]![4]).toBe('11,"name\n11"');
    },
  );
});
