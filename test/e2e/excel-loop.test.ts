import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ListedMail } from '../../cli/mail.ts';
import { lastJsonLine, rowfleet } from '../helpers/cli.ts';
import { excelCsv, invalidAddress, mailSheet, rowAddress } from '../helpers/mail-sheet.ts';
import { parseResultsCsv } from '../helpers/results-csv.ts';
import { readZip } from '../helpers/zip.ts';
import { tempDirs } from '../helpers/temp.ts';

/**
 * Issue 20's loop as a back-office user lives it, through the CLI on the embedded runtime: check a CP932 order
 * export (a template column missing), fix it, check again, run, get the sheet back, correct the five wrong
 * addresses in it as Excel would save it, resubmit — and in the end every row was mailed exactly once.
 */
const ROWS = 500;
const INVALID = [17, 101, 250, 333, 499];

let dir: string;
let state: string;

const newDir = tempDirs();
beforeAll(async () => {
  dir = await newDir('rowfleet-e2e-excel-');
  state = join(dir, 'state');
});

interface CheckJson {
  ok: boolean;
  encoding: string;
  records: number;
  problems: { code: string; columns?: string[] }[];
  needs: { missing: string[] };
  samples: {
    record: number;
    output: { kind: string; to?: string; subject?: string; text?: string; html?: string };
  }[];
  estimate: { workers: number; seconds: number; usd: number; jpy: number };
}

const last = <T>(stdout: string) => JSON.parse(stdout.trimEnd().split('\n').pop()!) as T;
const common = () => ['--site', 'sakai', '--state-dir', state];

describe('Scenario: check, run, fix in Excel, resubmit (CLI, CP932 mail file)', { timeout: 300_000 }, () => {
  it('names the missing column, previews three mails, ends PARTIAL, and after the resubmit every row was mailed once', async () => {
    // Prepare: the export as first saved (受注日 missing) and as fixed (the column back, 5 addresses still wrong)
    const broken = join(dir, 'orders-broken.csv');
    const fixed = join(dir, 'orders.csv');
    writeFileSync(broken, mailSheet({ rows: ROWS, invalid: INVALID, omit: '受注日' }));
    writeFileSync(fixed, mailSheet({ rows: ROWS, invalid: INVALID }));

    // Act + Assess: the check names the column; nothing is sent, no job is made
    const bad = await rowfleet(['check', broken, '--processor', 'mail', '--json', ...common()]);
    expect(bad.code, bad.stderr).toBe(1);
    const badCheck = last<CheckJson>(bad.stdout);
    expect(badCheck.ok).toBe(false);
    expect(badCheck.encoding).toMatch(/932|shift_jis/i);
    expect(badCheck.needs.missing).toEqual(['受注日']);
    expect(badCheck.problems.map((p) => p.code)).toEqual(['PROCESSOR_FIELDS_MISSING']);

    // Act + Assess: the fixed file's check: three rendered mails and an estimate
    const good = await rowfleet(['check', fixed, '--processor', 'mail', '--json', ...common()]);
    expect(good.code, good.stderr).toBe(0);
    const check = last<CheckJson>(good.stdout);
    expect(check.ok).toBe(true);
    expect(check.records).toBe(ROWS);
    expect(check.samples.map((s) => s.record)).toEqual([1, 2, 3]);
    for (const s of check.samples) {
      expect(s.output.kind).toBe('mail');
      expect(s.output.to).toBe(rowAddress(s.record));
      expect(s.output.subject).toContain(`J-${String(s.record).padStart(5, '0')}`);
      expect(s.output.text).toContain(`顧客 ${s.record} 号 様`);
      expect(s.output.html).toContain('2026/12/07');
    }
    expect(check.estimate.workers).toBeGreaterThan(0);
    expect(check.estimate.seconds).toBeGreaterThan(0);
    expect(check.estimate.usd).toBeGreaterThan(0);
    expect(check.estimate.jpy).toBeGreaterThan(check.estimate.usd);
    const noMails = await rowfleet(['mail', 'list', '--json', '--state-dir', state]);
    expect(noMails.code, noMails.stderr).toBe(0);
    expect(last<ListedMail[]>(noMails.stdout)).toEqual([]);

    // Act: run it
    const out = join(dir, 'out');
    const run = await rowfleet(
      ['run', fixed, '--processor', 'mail', '--json', '--out', out, ...common()],
      180_000,
    );

    // Assess: PARTIAL, the five wrong addresses failed, results.csv in CP932 with every row in order
    expect(run.code, run.stderr).toBe(0);
    const summary = lastJsonLine(run.stdout);
    expect(summary.state).toBe('PARTIAL');
    expect(summary.rows).toEqual({ total: ROWS, succeeded: ROWS - 5, failed: 5, rejected: 0 });
    const entries = await readZip(summary.zip!);
    const sheet = parseResultsCsv(entries.find((e) => e.name === 'results.csv')!.data, 'cp932');
    expect(sheet.rows.map((r) => r.record)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    const failed = sheet.rows.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.record)).toEqual(INVALID);
    expect(new Set(failed.map((r) => r.code))).toEqual(new Set(['MAIL_INVALID_ADDRESS']));

    // Act: correct the five addresses in that sheet and save it as Excel does (CP932, quoting where needed)
    const cells = [
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
    const email = sheet.header.indexOf('email');
    for (const row of cells.slice(1)) {
      const n = Number(row[sheet.header.indexOf('rowfleet_record')]);
      if (INVALID.includes(n)) {
        expect(row[email]).toBe(invalidAddress(n));
        row[email] = rowAddress(n);
      }
    }
    const corrected = join(dir, 'results-corrected.csv');
    writeFileSync(corrected, excelCsv(cells));
    const resubmit = await rowfleet(
      ['resubmit', summary.token, corrected, '--json', '--out', out, ...common()],
      180_000,
    );

    // Assess: the attempt ran the five, the job succeeded, its latest sheet shows every row succeeded
    expect(resubmit.code, resubmit.stderr).toBe(0);
    const after = lastJsonLine(resubmit.stdout);
    expect(after.token).toBe(summary.token);
    expect(after.state).toBe('SUCCEEDED');
    expect(after.rows).toEqual({ total: ROWS, succeeded: ROWS, failed: 0, rejected: 0 });
    const results = join(dir, 'results-latest.csv');
    const download = await rowfleet(['results', summary.token, '-o', results, ...common()]);
    expect(download.code, download.stderr).toBe(0);
    const latest = parseResultsCsv(readFileSync(results), 'cp932');
    expect(latest.rows.every((r) => r.status === 'succeeded')).toBe(true);
    for (const n of INVALID) expect(latest.rows[n - 1]!.fields[email]).toBe(rowAddress(n));

    // Assess: every row was mailed exactly once, to its own address
    const listed = await rowfleet(['mail', 'list', '--token', summary.token, '--json', '--state-dir', state]);
    expect(listed.code, listed.stderr).toBe(0);
    const mails = last<ListedMail[]>(listed.stdout);
    expect(mails).toHaveLength(ROWS);
    expect(new Set(mails.map((m) => m.n))).toEqual(new Set(Array.from({ length: ROWS }, (_, i) => i + 1)));
    for (const m of mails) expect(m.to).toBe(rowAddress(m.n!));
  });
});
