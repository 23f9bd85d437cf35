import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ATOMIC_TMP, writeFileAtomic, writeFileAtomicSync } from '../../../../core/shared/atomic-write.ts';
import { caught } from '../../../helpers/streams.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rowfleet-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Function: writeFileAtomic', () => {
  it('replaces the file whole and leaves no temporary file beside it', async () => {
    // Prepare
    const file = join(dir, 'queues.json');
    await writeFile(file, 'old');

    // Act
    await writeFileAtomic(file, 'new');
    writeFileAtomicSync(join(dir, 'owner.json'), '{}', { mode: 0o600 });

    // Assess
    expect(await readFile(file, 'utf8')).toBe('new');
    expect((await readdir(dir)).sort()).toEqual(['owner.json', 'queues.json']);
    expect((await stat(join(dir, 'owner.json'))).mode & 0o777).toBe(0o600);
  });

  it('leaves the old file and no temporary file when the write fails', async () => {
    // Prepare: the target is a directory, so the rename fails after the temporary file is written
    const target = join(dir, 'taken');
    await writeFile(join(dir, 'keep'), 'old');
    await mkdir(join(target, 'inside'), { recursive: true });

    // Act
    const err = await caught(() => writeFileAtomic(target, 'new'));
    const errSync = await caught(async () => writeFileAtomicSync(target, 'new'));

    // Assess
    expect(err).toBeInstanceOf(Error);
    expect(errSync).toBeInstanceOf(Error);
    expect((await readdir(dir)).sort()).toEqual(['keep', 'taken']);
  });

  it("names its temporary files so a directory's reader can skip them, the older names included", () => {
    // Act, Assess
    expect(ATOMIC_TMP.test('s3/bucket/key.rowfleet-tmp-123-4')).toBe(true);
    expect(ATOMIC_TMP.test('s3/bucket/key.rowfleet-tmp-7')).toBe(true);
    expect(ATOMIC_TMP.test('s3/bucket/key.csv')).toBe(false);
  });
});
