import { describe, expect, it } from 'vitest';
import type { ChunkMessage } from '../../core/messages/chunk.ts';
import { splitPart } from '../../core/messages/part.ts';
import { entryNameProblem, FINALIZE_ENTRIES, ZipWriter } from '../../core/finalize/zip.ts';
import { processChunk } from '../../core/work/process-chunk.ts';
import type { RowProcessor } from '../../core/work/processors/types.ts';
import { readZip } from '../helpers/zip.ts';
import { RUNNING_JOB } from '../helpers/running-job.ts';

const job = RUNNING_JOB;

/** What each record's processor answers: its outputs' names (record n gets NAMES[n - 1]). */
const NAMES: string[][] = [
  ['ok/1.json'],
  ['../escaped.txt'],
  ['/etc/passwd'],
  ['C:/Windows/x.txt'],
  ['a\\b.txt'],
  ['nul\0.txt'],
  ['line\nbreak.txt'],
  ['a/../../b.txt'],
  [FINALIZE_ENTRIES.manifest],
  ['ERRORS.CSV'],
  [FINALIZE_ENTRIES.results],
  ['ok/1.json'],
  ['ok/13.json', 'ok/13.json'],
  ['ok/14.json', 'dir//x.txt'],
  ['ok/15.json', 'sub/15.txt'],
];

function chunk(): { msg: ChunkMessage; records: [number, number, string[]][] } {
  const records = NAMES.map((_, i) => [i + 1, i + 2, [String(i + 1), 'x']] as [number, number, string[]]);
  const msg: ChunkMessage = {
    v: 2,
    site: 'sakai',
    token: job.token,
    chunk: 0,
    key: job.sourceKey,
    start: 0,
    end: 1,
    n: 1,
    line: 2,
    records: records.length,
  };
  return { msg, records };
}

const naming: RowProcessor = {
  name: 'naming',
  description: 'names its outputs as told',
  process: (row) => NAMES[row.n - 1]!.map((name) => ({ name, data: `record ${row.n}` })),
};

describe('Function: entryNameProblem', () => {
  it.each([
    ['rows/1.json'],
    ['a/b/c.txt'],
    ['山田/報告.txt'],
    ['..hidden/x'],
    ['x..y'],
    ['manifest.json.bak'],
    ['sub/manifest.json'],
  ])('accepts %j', (name) => {
    expect(entryNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', 'empty'],
    ['/abs', 'absolute'],
    ['c:/x', 'absolute'],
    ['..', '".."'],
    ['a/../b', '".."'],
    ['a\\b', 'backslash'],
    ['a\0b', 'control'],
    ['a\rb', 'control'],
    ['a\u007fb', 'control'],
    ['a\u0085b', 'control'],
    ['a//b', 'empty or "."'],
    ['./a', 'empty or "."'],
    ['dir/', 'empty or "."'],
    ['manifest.json', 'writes manifest.json'],
    ['Errors.csv', 'writes errors.csv'],
    ['results.csv', 'writes results.csv'],
    ['x'.repeat(65_536), 'longer than 65535'],
  ])('refuses %j (%s)', (name, why) => {
    expect(entryNameProblem(name)).toContain(why);
  });
});

describe('Function: processChunk (zip entry names)', () => {
  it('fails a record whose output name is unsafe, reserved or taken in the chunk with ZIP_ENTRY_NAME, and puts none of its outputs in', async () => {
    // Prepare
    const { msg, records } = chunk();

    // Act
    const done = await processChunk(job, msg, records, naming);

    // Assess
    const { meta, entries } = splitPart(done.part);
    expect(done).toMatchObject({ succeeded: 2, failed: 13 });
    expect(meta.failures.map((f) => [f.n, f.code])).toEqual(
      Array.from({ length: 13 }, (_, i) => [i + 2, 'ZIP_ENTRY_NAME']),
    );
    expect(meta.failures.find((f) => f.n === 12)?.message).toContain('an earlier record of the chunk took');
    const parts: Buffer[] = [];
    const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)));
    await zip.addPrebuilt(entries);
    await zip.finish();
    const files = await readZip(Buffer.concat(parts));
    expect(files.map((f) => [f.name, f.data.toString('utf8')])).toEqual([
      ['ok/1.json', 'record 1'],
      ['ok/15.json', 'record 15'],
      ['sub/15.txt', 'record 15'],
    ]);
  });
});
