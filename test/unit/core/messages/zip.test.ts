import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLocalEntry,
  copyLocalEntries,
  DeflatedEntry,
  LocalEntries,
  ZipWriter,
} from '../../../../core/messages/zip.ts';
import { readZip } from '../../../helpers/zip.ts';

const ENTRIES = 70_000;

/** Entry i: small JSON for most, a compressible text above the deflate threshold for every 10th. */
function content(i: number): Buffer {
  if (i % 10 === 0) return Buffer.from(`record ${i}: ${'山田太郎 '.repeat(40)}\n`, 'utf8');
  return Buffer.from(JSON.stringify({ n: i, name: `name-${i}` }), 'utf8');
}
const entryName = (i: number) => `rows/${i + 1}.json`;

async function writeZip(build: (zip: ZipWriter) => Promise<void>): Promise<Buffer> {
  const parts: Buffer[] = [];
  const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)));
  await build(zip);
  await zip.finish();
  return Buffer.concat(parts);
}

/** Reads a zip with Python's zipfile: entry count, testzip() result and a SHA-256 over names and data. */
function pythonSummary(path: string): { count: number; bad: string | null; digest: string; names: string[] } {
  const script = `
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    infos = z.infolist()
    h = hashlib.sha256()
    for i in infos:
        h.update(i.filename.encode('utf-8') + b'\\0' + z.read(i) + b'\\0')
    print(json.dumps({'count': len(infos), 'bad': z.testzip(), 'digest': h.hexdigest(),
                      'names': [i.filename for i in infos[:3]] + [i.filename for i in infos[-2:]]}))
`;
  return JSON.parse(
    execFileSync('python3', ['-c', script, path], { encoding: 'utf8', maxBuffer: 1 << 24 }),
  ) as {
    count: number;
    bad: string | null;
    digest: string;
    names: string[];
  };
}

function digestOf(entries: { name: string; data: Buffer }[]): string {
  const h = createHash('sha256');
  for (const e of entries)
    h.update(Buffer.concat([Buffer.from(e.name, 'utf8'), Buffer.from([0]), e.data, Buffer.from([0])]));
  return h.digest('hex');
}

describe('Class: ZipWriter', () => {
  let dir: string;
  let bigPath: string;
  let big: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rowfleet-zip-'));
    bigPath = join(dir, 'big.zip');
    big = await writeZip(async (zip) => {
      for (let i = 0; i < ENTRIES; i++) await zip.addEntry(entryName(i), content(i));
    });
    writeFileSync(bigPath, big);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`writes ${ENTRIES} entries (ZIP64) that yauzl reads back complete and byte-exact`, async () => {
    // Prepare
    const expected = Array.from({ length: ENTRIES }, (_, i) => ({ name: entryName(i), data: content(i) }));

    // Act
    const entries = await readZip(big);

    // Assess
    expect(entries).toHaveLength(ENTRIES);
    expect(big.readUInt32LE(big.length - 22 - 20 - 56)).toBe(0x06064b50); // ZIP64 end of central directory
    expect(big.readUInt16LE(big.length - 22 + 10)).toBe(0xffff); // classic EOCD defers to ZIP64
    expect(entries.map((e) => e.name)).toEqual(expected.map((e) => e.name));
    const mismatched = entries.filter((e, i) => !e.data.equals(expected[i]!.data)).map((e) => e.name);
    expect(mismatched).toEqual([]);
  });

  it(`writes ${ENTRIES} entries that unzip -t tests without errors`, () => {
    // Prepare
    const args = ['-t', '-qq', bigPath];

    // Act
    const r = spawnSync('/usr/bin/unzip', args, { encoding: 'utf8', maxBuffer: 1 << 26 });

    // Assess
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const listing = spawnSync('/usr/bin/unzip', ['-l', bigPath], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(listing.stdout).toMatch(new RegExp(`\\s${ENTRIES} files\\s*$`));
  });

  it(`writes ${ENTRIES} entries that Python's zipfile reads complete and byte-exact`, () => {
    // Prepare
    const expected = digestOf(
      Array.from({ length: ENTRIES }, (_, i) => ({ name: entryName(i), data: content(i) })),
    );

    // Act
    const r = pythonSummary(bigPath);

    // Assess
    expect(r.count).toBe(ENTRIES);
    expect(r.bad).toBeNull();
    expect(r.digest).toBe(expected);
    expect(r.names).toEqual([
      'rows/1.json',
      'rows/2.json',
      'rows/3.json',
      `rows/${ENTRIES - 1}.json`,
      `rows/${ENTRIES}.json`,
    ]);
  });

  it('copies prebuilt local entries (addPrebuilt) between in-memory ones', async () => {
    // Prepare: entries built elsewhere, as the row workers do, some deflated, some stored
    const built = new LocalEntries();
    for (let i = 0; i < 50; i++)
      built.add(`rows/${i + 1}.json`, i % 2 === 0 ? content(i) : content(i).toString('utf8'));
    const single = buildLocalEntry('reports/x.html', Buffer.from('<p>x</p>'));

    // Act
    let counted = 0;
    const zip = await writeZip(async (z) => {
      await z.addEntry('manifest.json', '{"a":1}');
      counted += await z.addPrebuilt(built.bytes());
      counted += await z.addPrebuilt(single.bytes);
      await z.addEntry('errors.csv', Buffer.from('line,record\r\n'));
    });
    const entries = await readZip(zip);

    // Assess
    expect(built.count).toBe(50);
    expect(counted).toBe(51);
    expect(entries.map((e) => e.name)).toEqual([
      'manifest.json',
      ...Array.from({ length: 50 }, (_, i) => `rows/${i + 1}.json`),
      'reports/x.html',
      'errors.csv',
    ]);
    entries.slice(1, 51).forEach((e, i) => expect(e.data.equals(content(i))).toBe(true));
    expect(entries[51]!.data.toString()).toBe('<p>x</p>');
    expect(entries[52]!.data.toString()).toBe('line,record\r\n');
  });

  it('writes the same archive from prebuilt entries as from the same entries added in memory', async () => {
    // Prepare: deflated and stored entries, ASCII and UTF-8 names, one stamp for both archives; central records
    // of more than one 1 MiB slab (20,000 × ~60 bytes)
    const stamp = { time: 0x6b2f, date: 0x5b87 };
    const names = Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? `行/${i}.txt` : `rows/${i}.json`));

    // Act
    const inMemory = Buffer.concat(
      await (async () => {
        const parts: Buffer[] = [];
        const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)), stamp);
        for (const [i, name] of names.entries()) await zip.addEntry(name, content(i));
        await zip.finish();
        return parts;
      })(),
    );
    const prebuilt = Buffer.concat(
      await (async () => {
        const parts: Buffer[] = [];
        const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)), stamp);
        const built = names.map((name, i) => buildLocalEntry(name, content(i), stamp).bytes);
        await zip.addPrebuilt(Buffer.concat(built.slice(0, 5)));
        await zip.addPrebuilt(Buffer.concat(built), new Set([0, 1, 2, 3, 4]));
        await zip.finish();
        return parts;
      })(),
    );

    // Assess: the first entries are in the first call only (the second leaves them out); read back by a reader of
    // its own, every name and every byte is there (the two archives share the central directory's code)
    expect(prebuilt.equals(inMemory)).toBe(true);
    const read = await readZip(prebuilt);
    expect(read.map((f) => f.name)).toEqual(names);
    expect(read.every((f, i) => f.data.equals(content(i)))).toBe(true);
  });

  it('refuses prebuilt bytes that are cut short or are not local entries', async () => {
    // Prepare
    const built = buildLocalEntry('rows/1.json', Buffer.from('{"x":1}'));
    const zip = new ZipWriter(async () => {});

    // Act
    const short = zip.addPrebuilt(built.bytes.subarray(0, built.bytes.length - 1));
    const garbage = zip.addPrebuilt(Buffer.from('not a zip entry at all, no PK header here'));

    // Assess
    await expect(short).rejects.toThrow(/cut short/);
    await expect(garbage).rejects.toThrow(/no local header/);
  });

  it('stores a non-ASCII entry name as UTF-8 that yauzl, unzip and Python read back', async () => {
    // Prepare
    const name = 'reports/山田太郎①.html';
    const data = Buffer.from('<p>こんにちは</p>', 'utf8');
    const path = join(dir, 'names.zip');

    // Act
    writeFileSync(path, await writeZip((z) => z.addEntry(name, data)));

    // Assess
    const entries = await readZip(path);
    expect(entries).toEqual([{ name, data }]);
    expect(pythonSummary(path).names).toEqual([name, name]);
    const extract = spawnSync('/usr/bin/unzip', ['-p', path], { maxBuffer: 1 << 20 });
    expect(extract.status).toBe(0);
    expect(Buffer.from(extract.stdout).equals(data)).toBe(true);
  });
});

describe('Class: LocalEntries (limits of the entry format)', () => {
  it('refuses a name longer than the 16-bit length field instead of writing a corrupt archive', () => {
    // Prepare
    const entries = new LocalEntries();
    const long = 'n'.repeat(65_536);

    // Act / Assess
    expect(() => entries.add(long, 'x')).toThrow(/65535/);
    expect(() => buildLocalEntry(long, Buffer.from('x'))).toThrow(/65535/);
    expect(entries.count).toBe(0);
    expect(() => entries.add('n'.repeat(65_535), 'x')).not.toThrow();
  });
});

describe('Method: ZipWriter.addStream (an entry streamed last, sizes in a data descriptor)', () => {
  it('writes an entry that yauzl and Python read back byte-exact, and that copying the archive stops at', async () => {
    // Prepare: two entries, then 3 MB of text streamed in pieces
    const pieces = Array.from({ length: 300 }, (_, i) =>
      Buffer.from(`${i},山田,${'x'.repeat(10_000)}\r\n`, 'utf8'),
    );
    async function* stream() {
      for (const p of pieces) yield p;
    }
    const dir = mkdtempSync(join(tmpdir(), 'rowfleet-zip-stream-'));

    // Act
    const zipBytes = await writeZip(async (zip) => {
      await zip.addEntry('a.json', '{"a":1}');
      await zip.addEntry('b.json', '{"b":2}');
      await zip.addStream('results.csv', stream());
    });
    writeFileSync(join(dir, 's.zip'), zipBytes);
    const entries = await readZip(zipBytes);
    const python = pythonSummary(join(dir, 's.zip'));
    const copied = await writeZip(async (zip) => {
      await copyLocalEntries(
        (start, end) => Promise.resolve(zipBytes.subarray(start, end + 1)),
        zipBytes.length,
        zip,
        new Set(['results.csv']),
      );
    });
    const notSkipped = await writeZip(async (zip) => {
      await copyLocalEntries((s, e) => Promise.resolve(zipBytes.subarray(s, e + 1)), zipBytes.length, zip);
    }).catch((e: unknown) => e);
    rmSync(dir, { recursive: true, force: true });

    // Assess
    expect(entries.map((e) => e.name)).toEqual(['a.json', 'b.json', 'results.csv']);
    expect(entries[2]!.data.equals(Buffer.concat(pieces))).toBe(true);
    expect(zipBytes.length).toBeLessThan(Buffer.concat(pieces).length / 10); // deflated
    expect(python).toMatchObject({ count: 3, bad: null });
    expect((await readZip(copied)).map((e) => e.name)).toEqual(['a.json', 'b.json']);
    expect(notSkipped).toBeInstanceOf(Error);
  });
});

describe('Method: ZipWriter.addDeflated (an entry deflated while the entries before it were written)', () => {
  it('writes the bytes addStream writes for the same data, however the data was cut', async () => {
    // Prepare: 3 MB of rows, streamed in one cut and deflated beforehand in another
    const rows = Buffer.from(
      Array.from({ length: 30_000 }, (_, i) => `${i},山田,${'x'.repeat(i % 97)}\r\n`).join(''),
      'utf8',
    );
    async function* stream() {
      for (let i = 0; i < rows.length; i += 65_536) yield rows.subarray(i, i + 65_536);
    }

    // Act
    const streamed = await writeZip(async (zip) => {
      await zip.addEntry('a.json', '{"a":1}');
      await zip.addStream('results.csv', stream());
    });
    const deflated = await writeZip(async (zip) => {
      const entry = new DeflatedEntry();
      for (let i = 0; i < rows.length; i += 1_000) await entry.write(rows.subarray(i, i + 1_000));
      await zip.addEntry('a.json', '{"a":1}');
      await entry.end();
      await zip.addDeflated('results.csv', entry);
    });

    // Assess
    expect(deflated.equals(streamed)).toBe(true);
    expect((await readZip(deflated)).map((e) => e.data.equals(rows))).toEqual([false, true]);
  });
});
