import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { beforeAll, describe, expect, it } from 'vitest';
import { getStage, loadConfig } from '../../config/index.ts';
import { ZipWriter } from '../../core/messages/zip.ts';
import { lastJsonLine, rowfleet, type RunJson } from '../helpers/cli.ts';
import { readZip, readZipText } from '../helpers/zip.ts';
import { tempDirs } from '../helpers/temp.ts';

let dir: string;

const newDir = tempDirs();
beforeAll(async () => {
  dir = await newDir('rowfleet-e2e-cli-');
});

function csvLine(fields: readonly string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}

/** Runs `rowfleet run <file> --site sakai --json` with a fresh state dir and out dir. */
async function run(name: string, bytes: Buffer, extra: string[] = []) {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  const out = join(dir, `${name}.out`);
  const r = await rowfleet([
    'run',
    file,
    '--site',
    'sakai',
    '--json',
    '--state-dir',
    join(dir, `${name}.state`),
    '--out',
    out,
    ...extra,
  ]);
  let summary: RunJson | undefined;
  try {
    summary = lastJsonLine(r.stdout);
  } catch {
    summary = undefined;
  }
  return { ...r, summary, out };
}

describe('CLI: rowfleet run', { timeout: 120_000 }, () => {
  it('runs a UTF-8 file with the json processor: SUCCEEDED, exit 0, a zip with manifest, errors.csv and exact rows', async () => {
    // Prepare
    const header = ['id', 'name', 'memo', 'amount'];
    const records = [
      ['1', '山田太郎', 'plain', '100'],
      ['2', '鈴木, 花子', 'quote "inside"', '-5'],
      ['3', 'multi\nline', '  spaces  ', '=1+1'],
      ['4', '', 'empty name', '0'],
    ];
    const bytes = Buffer.from([header, ...records].map(csvLine).join('\r\n') + '\r\n', 'utf8');

    // Act
    const r = await run('good.csv', bytes, ['--processor', 'json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({
      site: 'sakai',
      state: 'SUCCEEDED',
      rows: { total: 4, succeeded: 4, failed: 0, rejected: 0 },
    });
    expect(r.summary?.error).toBeUndefined();
    expect(r.summary?.zip).toBe(resolve(r.out, `${r.summary!.token}.zip`));
    const zip = await readZipText(r.summary!.zip!);
    expect([...zip.keys()]).toEqual([
      'manifest.json',
      'errors.csv',
      'rows/1.json',
      'rows/2.json',
      'rows/3.json',
      'rows/4.json',
      'results.csv',
    ]);
    records.forEach((rec, i) => {
      const obj = JSON.parse(zip.get(`rows/${i + 1}.json`)!) as Record<string, string>;
      expect(Object.entries(obj)).toEqual(header.map((h, k) => [h, rec[k]]));
    });
    expect(JSON.parse(zip.get('manifest.json')!)).toMatchObject({
      token: r.summary!.token,
      site: 'sakai',
      state: 'SUCCEEDED',
      encoding: 'utf-8',
      processor: 'json',
      counts: { total: 4, succeeded: 4, failed: 0, rejected: 0 },
      // The summary says when the job was taken, as its view (and so its manifest) does.
      timings: { receivedAt: r.summary!.receivedAt },
    });
    expect(zip.get('errors.csv')).toBe('\ufeffline,record,code,message,raw\r\n');
  });

  it('runs a CP932 file from Japanese Excel: records decoded right, manifest says cp932', async () => {
    // Prepare
    const header = ['id', '氏名', '拠点'];
    const records = [
      ['1', 'ソフト表示', '堺'],
      ['2', '髙橋①', '川崎'],
      ['3', 'ミ～ル, 予定', '鹿島'],
    ];
    const bytes = iconv.encode([header, ...records].map(csvLine).join('\r\n') + '\r\n', 'cp932');

    // Act
    const r = await run('excel.csv', bytes, ['--processor', 'json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({
      state: 'SUCCEEDED',
      rows: { total: 3, succeeded: 3, failed: 0, rejected: 0 },
    });
    const zip = await readZipText(r.summary!.zip!);
    expect(JSON.parse(zip.get('manifest.json')!)).toMatchObject({ encoding: 'cp932', header });
    records.forEach((rec, i) => {
      expect(JSON.parse(zip.get(`rows/${i + 1}.json`)!)).toEqual(
        Object.fromEntries(header.map((h, k) => [h, rec[k]])),
      );
    });
  });

  it('ends PARTIAL with exit 0 when one record has a wrong column count; errors.csv lists it', async () => {
    // Prepare
    const bytes = Buffer.from('id,name\n1,a\n2,b,extra\n3,c\n\n4,d\n', 'utf8');

    // Act
    const r = await run('partial.csv', bytes, ['--processor', 'json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({
      state: 'PARTIAL',
      rows: { total: 4, succeeded: 3, failed: 0, rejected: 1 },
    });
    const zip = await readZipText(r.summary!.zip!);
    expect([...zip.keys()]).toEqual([
      'manifest.json',
      'errors.csv',
      'rows/1.json',
      'rows/3.json',
      'rows/4.json',
      'results.csv',
    ]);
    const errors = parse(zip.get('errors.csv')!.replace(/^\ufeff/, '')) as string[][];
    expect(errors).toEqual([
      ['line', 'record', 'code', 'message', 'raw'],
      ['3', '2', 'COLUMN_COUNT', 'Expected 2 fields as in the header, found 3.', '2,b,extra'],
    ]);
    expect(JSON.parse(zip.get('rows/4.json')!)).toEqual({ id: '4', name: 'd' });
  });

  it('exits 2 with REJECTED and the error code for an .xlsx renamed to .csv', async () => {
    // Prepare
    const parts: Buffer[] = [];
    const xlsx = new ZipWriter(async (b) => void parts.push(b));
    await xlsx.addEntry('[Content_Types].xml', '<?xml version="1.0"?><Types/>');
    await xlsx.addEntry('xl/workbook.xml', '<?xml version="1.0"?><workbook/>');
    await xlsx.finish();

    // Act
    const r = await run('book.csv', Buffer.concat(parts));

    // Assess
    expect(r.code, r.stderr).toBe(2);
    expect(r.summary).toMatchObject({
      site: 'sakai',
      state: 'REJECTED',
      rows: { total: 0, succeeded: 0, failed: 0, rejected: 0 },
    });
    expect(r.summary?.error?.code).toBe('NOT_CSV');
    expect(r.summary?.zip).toBeUndefined();
    expect(existsSync(r.out)).toBe(false);
  });

  it('sends a file above the direct-upload limit through the presigned route and succeeds', async () => {
    // Prepare: > 6 MB
    const records = 36_000;
    const pad = 'x'.repeat(170);
    const lines = ['id,name,note'];
    for (let i = 1; i <= records; i++) lines.push(`${i},name${i},${pad}`);
    const bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
    expect(bytes.length).toBeGreaterThan(getStage('local').limits.directUploadMaxBytes);
    expect(bytes.length).toBeGreaterThan(6 * 1024 * 1024);

    // Act
    const r = await run('big.csv', bytes, ['--processor', 'json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({
      state: 'SUCCEEDED',
      rows: { total: records, succeeded: records, failed: 0, rejected: 0 },
    });
    expect(statSync(r.summary!.zip!).size).toBeGreaterThan(0);
    const entries = await readZip(r.summary!.zip!);
    expect(entries).toHaveLength(records + 3);
    expect(entries.at(-1)!.name).toBe('results.csv');
    expect(entries[2]!.name).toBe('rows/1.json');
    expect(JSON.parse(entries.at(-2)!.data.toString('utf8'))).toEqual({
      id: String(records),
      name: `name${records}`,
      note: pad,
    });
  });
});

describe('CLI: rowfleet run with bad arguments', () => {
  it('exits 1 with a message naming the problem for an unknown site or a missing file', async () => {
    // Prepare
    const file = join(dir, 'exists.csv');
    writeFileSync(file, 'id\n1\n');

    // Act
    const unknownSite = await rowfleet([
      'run',
      file,
      '--site',
      'nowhere',
      '--state-dir',
      join(dir, 'bad.state'),
    ]);
    const missingFile = await rowfleet([
      'run',
      join(dir, 'missing.csv'),
      '--site',
      'sakai',
      '--state-dir',
      join(dir, 'bad.state'),
    ]);

    // Assess
    expect(unknownSite.code).toBe(1);
    expect(unknownSite.stderr).toMatch(/Unknown site "nowhere"/);
    expect(missingFile.code).toBe(1);
    expect(missingFile.stderr).toMatch(/missing\.csv/);
  });
});

describe('CLI: rowfleet sites', () => {
  it('prints the configured sites as a JSON array of {id, name, ...}', async () => {
    // Prepare
    const expected = loadConfig().sites.map((s) => ({ id: s.id, name: s.name }));

    // Act
    const r = await rowfleet(['sites', '--json']);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    const sites = JSON.parse(r.stdout.trim()) as { id: string; name: string }[];
    expect(sites.map((s) => ({ id: s.id, name: s.name }))).toEqual(expected);
    expect(sites.map((s) => s.id)).toContain('sakai');
  });
});

describe('CLI: rowfleet --help', () => {
  it('describes the commands and exits 0', async () => {
    // Prepare
    const args = ['--help'];

    // Act
    const r = await rowfleet(args);

    // Assess
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: rowfleet/);
    expect(r.stdout).toMatch(/\brun\b/);
    expect(r.stdout).toMatch(/\bsites\b/);
    const runHelp = await rowfleet(['run', '--help']);
    expect(runHelp.code).toBe(0);
    for (const opt of ['--site', '--processor', '--workers', '--out', '--state-dir', '--json'])
      expect(runHelp.stdout).toContain(opt);
  });
});
