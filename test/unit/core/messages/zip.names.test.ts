import { describe, expect, it } from 'vitest';
import { splitPart } from '../../../../core/messages/part.ts';
import { entryNameProblem, FINALIZE_ENTRIES, ZipWriter } from '../../../../core/messages/zip.ts';
import { namesTakenElsewhere } from '../../../../core/finalize/entry-names.ts';
import { processChunk } from '../../../../core/work/process-chunk.ts';
import type { RowProcessor } from '../../../../core/processors/types.ts';
import { readZip } from '../../../helpers/zip.ts';
import { RUNNING_JOB, runningChunk } from '../../../helpers/running-job.ts';

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

const chunk = (count = NAMES.length, first = 1, number = 0) =>
  runningChunk(count, first, { chunk: number, second: () => 'x' });

/** The zip of prebuilt entries, as [name, text]. */
async function zipOf(parts: [Buffer, ReadonlySet<number> | undefined][]): Promise<[string, string][]> {
  const out: Buffer[] = [];
  const zip = new ZipWriter(async (b) => void out.push(Buffer.from(b)));
  for (const [entries, skip] of parts) await zip.addPrebuilt(entries, skip);
  await zip.finish();
  return (await readZip(Buffer.concat(out))).map((f) => [f.name, f.data.toString('utf8')]);
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
    // The edges of the one-pass check for plain names (zip.ts plainEntryName).
    ['.a/b'],
    ['a/b.'],
    ['A-Z_0.9/-'],
    ['x'.repeat(65_535)],
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
    ['.', 'empty or "."'],
    ['a/.', 'empty or "."'],
    ['a/..', '".."'],
    ['MANIFEST.JSON', 'writes manifest.json'],
    ['C:x', 'absolute'],
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
    expect(await zipOf([[entries, undefined]])).toEqual([
      ['ok/1.json', 'record 1'],
      ['ok/15.json', 'record 15'],
      ['sub/15.txt', 'record 15'],
    ]);
  });
});

describe('Function: namesTakenElsewhere (the finalize, across chunks)', () => {
  it('fails a record taking a name a record of an earlier chunk took, and leaves its entries out of the zip', async () => {
    // Prepare: records 2 and 5 (chunks 0 and 1) both write shared/out.json; record 5 writes one more entry
    const processor: RowProcessor = {
      name: 'shared',
      description: 'one name for two records',
      process: (row) =>
        row.n === 2
          ? [{ name: 'shared/out.json', data: 'record 2' }]
          : row.n === 5
            ? [
                { name: 'own/5.txt', data: 'record 5' },
                { name: 'shared/out.json', data: 'record 5' },
              ]
            : [{ name: `own/${row.n}.txt`, data: `record ${row.n}` }],
    };
    const a = chunk(3, 1, 0);
    const b = chunk(3, 4, 1);
    const partA = splitPart((await processChunk(job, a.msg, a.records, processor)).part);
    const partB = splitPart((await processChunk(job, b.msg, b.records, processor)).part);

    // Act
    const found = namesTakenElsewhere([partA.meta, partB.meta]);
    const files = await zipOf([
      [partA.entries, found.skip.get(0)],
      [partB.entries, found.skip.get(1)],
    ]);

    // Assess
    expect(found.failures).toMatchObject([{ n: 5, line: 6, code: 'ZIP_ENTRY_NAME' }]);
    expect(found.failures[0]!.message).toContain('record 2');
    expect([...(found.skip.get(1) ?? [])]).toEqual([1, 2]);
    expect(found.skip.get(0)).toBeUndefined();
    expect(files).toEqual([
      ['own/1.txt', 'record 1'],
      ['shared/out.json', 'record 2'],
      ['own/3.txt', 'record 3'],
      ['own/4.txt', 'record 4'],
      ['own/6.txt', 'record 6'],
    ]);
  });
});
