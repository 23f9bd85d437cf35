import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJsonLine, rowfleet } from '../helpers/cli.ts';
import { parseResultsCsv } from '../helpers/results-csv.ts';

let dir: string;
let state: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-resubmit-'));
  state = join(dir, 'state');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('CLI: rowfleet results and rowfleet resubmit', { timeout: 180_000 }, () => {
  it("downloads a CP932 job's results.csv, sends it back corrected, and ends with every record succeeded once", async () => {
    // Prepare: a CP932 file whose record 2 has a field too many (rejected by the split)
    const file = join(dir, 'customers.csv');
    writeFileSync(file, iconv.encode('id,name\r\n1,山田\r\n2,鈴木,余分\r\n3,佐藤\r\n', 'cp932'));
    const common = ['--site', 'sakai', '--state-dir', state];
    const first = lastJsonLine(
      (await rowfleet(['run', file, '--json', '--out', join(dir, 'out'), ...common])).stdout,
    );
    expect(first).toMatchObject({ state: 'PARTIAL', rows: { succeeded: 2, rejected: 1 } });

    // Act: download, correct record 2 as Excel would save it (CP932, every cell quoted), send back, download again
    const sheetFile = join(dir, 'results.csv');
    const got = await rowfleet(['results', first.token, '-o', sheetFile, '--json', ...common]);
    const sheet = parseResultsCsv(readFileSync(sheetFile), 'cp932');
    const edited = [
      sheet.header,
      ...sheet.rows.map((r) => [
        ...r.fields,
        String(r.record),
        String(r.line),
        r.status,
        r.code,
        r.message,
        r.output,
      ]),
    ];
    edited[2]![1] = '鈴木 (直した)';
    const excel =
      edited.map((r) => r.map((c) => `"${c.replace(/"/g, '""')}"`).join(',')).join('\r\n') + '\r\n';
    const corrected = join(dir, 'corrected.csv');
    writeFileSync(corrected, iconv.encode(excel, 'cp932'));
    const resubmitted = await rowfleet([
      'resubmit',
      first.token,
      corrected,
      '--json',
      '--out',
      join(dir, 'out'),
      ...common,
    ]);
    const again = await rowfleet(['results', first.token, '-o', join(dir, 'again.csv'), ...common]);
    const after = parseResultsCsv(readFileSync(join(dir, 'again.csv')), 'cp932');

    // Assess
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout.trim().split('\n').pop()!)).toMatchObject({ attempt: 1, encoding: 'cp932' });
    expect(resubmitted.code, resubmitted.stderr).toBe(0);
    const summary = lastJsonLine(resubmitted.stdout) as unknown as Record<string, unknown>;
    expect(summary).toMatchObject({
      state: 'SUCCEEDED',
      attempt: 2,
      run: 1,
      notRunCount: 2,
      rows: { total: 3, succeeded: 3, failed: 0, rejected: 0 },
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('attempt 2');
    expect(after.rows.map((r) => [r.record, r.status, r.fields])).toEqual([
      [1, 'succeeded', ['1', '山田']],
      [2, 'succeeded', ['2', '鈴木 (直した)']],
      [3, 'succeeded', ['3', '佐藤']],
    ]);
  });
});
