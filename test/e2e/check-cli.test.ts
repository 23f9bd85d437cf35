import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckAnswer } from '../../core/intake/check.ts';
import { rowfleet } from '../helpers/cli.ts';

/** `rowfleet check` against the local runtime: exit codes, the human summary, the JSON answer. */

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-check-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A CP932 order export for the `mail` processor; `drop` leaves a column out; rows in `bad` have no address. */
function cp932Export(name: string, rows: number, o: { drop?: string; bad?: number[] } = {}): string {
  const header = ['id', '氏名', '品目', '数量', '受注日', 'email'];
  const keep = header.map((h) => h !== o.drop);
  const lines = [header.filter((_, i) => keep[i]).join(',')];
  for (let n = 1; n <= rows; n++) {
    const email = o.bad?.includes(n) ? `無効-${n}` : `kunde-${n}@example.com`;
    const row = [`S-${n}`, `山田${n}`, '鋼板', String(n), '2026-12-01', email];
    lines.push(row.filter((_, i) => keep[i]).join(','));
  }
  const file = join(dir, name);
  writeFileSync(file, iconv.encode(lines.join('\r\n') + '\r\n', 'cp932'));
  return file;
}

const check = (file: string, extra: string[] = []) =>
  rowfleet([
    'check',
    file,
    '--site',
    'sakai',
    '--processor',
    'mail',
    '--state-dir',
    join(dir, 'state'),
    ...extra,
  ]);

describe('CLI: rowfleet check', { timeout: 120_000 }, () => {
  it('exits 1 naming the template column a CP932 mail file lacks; --json answers ok false with the problem', async () => {
    // Prepare
    const file = cp932Export('lacking.csv', 500, { drop: '受注日', bad: [7, 70, 170, 270, 370] });

    // Act
    const human = await check(file);
    const json = await check(file, ['--json']);

    // Assess
    expect(human.code, human.stderr).toBe(1);
    expect(human.stdout).toContain('NOT OK');
    expect(human.stdout).toContain('encoding cp932');
    expect(human.stdout).toContain('500 records: 500 valid, 0 rejected');
    expect(human.stdout).toContain('missing columns: 受注日');
    expect(human.stdout).toMatch(/problem: PROCESSOR_FIELDS_MISSING \(line 1\): .*"受注日"/);
    expect(json.code).toBe(1);
    const answer = JSON.parse(json.stdout.trim()) as CheckAnswer;
    expect(answer).toMatchObject({ check: true, ok: false, encoding: 'cp932', samples: [] });
    expect(answer.problems).toMatchObject([{ code: 'PROCESSOR_FIELDS_MISSING', columns: ['受注日'] }]);
  });

  it('exits 0 for the fixed file: three rendered mails (subject, first lines) and the estimate in USD and JPY', async () => {
    // Prepare
    const file = cp932Export('fixed.csv', 500, { bad: [7, 70, 170, 270, 370] });

    // Act
    const human = await check(file, ['--template', 'notice']);
    const json = await check(file, ['--json']);

    // Assess
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/processor mail \(template notice\): OK/);
    for (const n of [1, 2, 3]) {
      expect(human.stdout).toContain(`record ${n} (line ${n + 1}): to kunde-${n}@example.com`);
      expect(human.stdout).toContain(`subject: 【堺】ご注文 S-${n} のご案内`);
      expect(human.stdout).toContain(`| 山田${n} 様`);
    }
    expect(human.stdout).toMatch(
      /estimate: \d+ workers? \(\d+ free now\), about [\d.]+ s; \$[\d.]+ = ¥[\d.]+ at ¥150\/\$/,
    );
    expect(human.stdout).toMatch(/ses +\$0\.0500 +500 mails/);
    expect(json.code).toBe(0);
    const answer = JSON.parse(json.stdout.trim()) as CheckAnswer;
    expect(answer).toMatchObject({
      ok: true,
      records: 500,
      valid: 500,
      template: 'notice',
      fileName: 'fixed.csv',
    });
    expect(answer.samples.map((s) => s.output.kind)).toEqual(['mail', 'mail', 'mail']);
    expect(answer.estimate.usd).toBeGreaterThan(0);
  });

  it('exits 1 with the API’s code for a request it refuses (an unknown template)', async () => {
    // Prepare
    const file = cp932Export('any.csv', 3);

    // Act
    const r = await check(file, ['--template', 'nope']);
    const json = await check(file, ['--template', 'nope', '--json']);

    // Assess
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('UNKNOWN_TEMPLATE');
    expect(JSON.parse(json.stdout.trim())).toMatchObject({ ok: false, error: { code: 'UNKNOWN_TEMPLATE' } });
  });
});
