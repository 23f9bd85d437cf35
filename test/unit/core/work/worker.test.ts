import { describe, expect, it } from 'vitest';
import type { ChunkMessage } from '../../../../core/messages/chunk.ts';
import type { RowProcessor } from '../../../../core/processors/index.ts';
import { splitPart } from '../../../../core/messages/part.ts';
import { processChunk } from '../../../../core/work/process-chunk.ts';
import { idleEnough, isOwnChunk } from '../../../../core/work/worker.ts';
import { ZipWriter } from '../../../../core/messages/zip.ts';
import { readZip } from '../../../helpers/zip.ts';
import { RUNNING_JOB } from '../../../helpers/running-job.ts';

const job = RUNNING_JOB;
const TOKEN = job.token;
const msg: ChunkMessage = {
  v: 2,
  site: 'sakai',
  token: TOKEN,
  chunk: 7,
  key: job.sourceKey,
  start: 0,
  end: 1,
  n: 1,
  line: 2,
  records: 3,
};

/** Fails on record 2; writes one file per record otherwise (sync for 1, async for 3). */
const flaky: RowProcessor = {
  name: 'test',
  description: 'test processor',
  process(row, ctx) {
    if (row.n === 2) throw new Error(`cannot handle ${row.fields[1]}`);
    const out = [{ name: `out/${row.n}.txt`, data: `${ctx.site}:${row.fields.join('|')}` }];
    return row.n === 3 ? Promise.resolve(out) : out;
  },
};

describe('Function: processChunk', () => {
  it('fails only the record whose processor throws and reports it as PROCESSING_FAILED', async () => {
    // Prepare
    const records: [number, number, string[]][] = [
      [1, 2, ['1', '山田']],
      [2, 3, ['2', '=bad']],
      [3, 5, ['3', 'multi\nline']],
    ];

    // Act
    const done = await processChunk(job, msg, records, flaky);

    // Assess
    expect({ succeeded: done.succeeded, failed: done.failed }).toEqual({ succeeded: 2, failed: 1 });
    const { meta, entries } = splitPart(done.part);
    expect(meta).toMatchObject({
      v: 3,
      site: 'sakai',
      token: TOKEN,
      chunk: 7,
      succeeded: 2,
      failed: 1,
      entries: 2,
    });
    expect(meta.failures).toEqual([
      { n: 2, line: 3, code: 'PROCESSING_FAILED', message: 'cannot handle =bad', raw: '2,=bad' },
    ]);
    const parts: Buffer[] = [];
    const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)));
    expect(await zip.addPrebuilt(entries)).toBe(2);
    await zip.finish();
    const files = await readZip(Buffer.concat(parts));
    expect(files.map((f) => [f.name, f.data.toString('utf8')])).toEqual([
      ['out/1.txt', 'sakai:1|山田'],
      ['out/3.txt', 'sakai:3|multi\nline'],
    ]);
  });
});

describe('Function: idleEnough', () => {
  const o = { idlePolls: 2, visibilitySeconds: 15, waitSeconds: 1 };

  it('never lets a worker leave before the split has recorded its totals', () => {
    expect(idleEnough({ chunksDone: 0 }, { idle: 100, idleMs: 3_600_000 }, o)).toBe(false);
  });

  it('leaves once every chunk is counted and enough receives came back empty', () => {
    const job = { totalChunks: 4, chunksDone: 4 };
    expect(idleEnough(job, { idle: 1, idleMs: 1000 }, o)).toBe(false);
    expect(idleEnough(job, { idle: 2, idleMs: 2000 }, o)).toBe(true);
  });

  it('stays while chunks are in flight elsewhere, until a visibility timeout (+ two polls) passed', () => {
    const job = { totalChunks: 4, chunksDone: 3 };
    expect(idleEnough(job, { idle: 50, idleMs: 17_000 }, o)).toBe(false);
    expect(idleEnough(job, { idle: 50, idleMs: 17_001 }, o)).toBe(true);
  });
});

describe('Function: isOwnChunk', () => {
  it("accepts only its own site's and job's chunks", () => {
    expect(isOwnChunk(msg, job)).toBe(true);
    expect(isOwnChunk({ ...msg, site: 'kawasaki' }, job)).toBe(false);
    expect(isOwnChunk({ ...msg, token: '7c9e6679-7425-40de-944b-e07fc1f90ae7' }, job)).toBe(false);
  });
});
