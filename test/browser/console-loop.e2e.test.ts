/**
 * The whole back-office loop of issue 20 through the console against the real local runtime (no stub), in English
 * and in Japanese, axe-clean at each step: a CP932 `mail` file of 500 rows with 5 invalid addresses and one template
 * column missing is checked (the column is named; no job, no mail), the fixed file's check shows three rendered
 * mails and an estimate, the run ends PARTIAL with 5 failures in results.csv (CP932), the 5 addresses are corrected
 * in that file with Excel's quoting and uploaded as corrections, and in the end every row was mailed exactly once
 * (what `rowfleet mail list` reads: the embedded SES's store).
 */
import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { fetchEmulatorPage } from '../../local/emulator-gate.ts';
import type { StoredMail } from '../../local/emulators/ses.ts';
import { listedMails } from '../../cli/mail.ts';
import { translate, type Lang, type MessageKey, type Params } from '../../web/src/messages.ts';
import { parseResultsCsv } from '../helpers/results-csv.ts';
import {
  expectAccessible,
  openConsole,
  screenshotPath,
  shownToken,
  useConsoleWorld,
  waitForState,
  writeTemp,
} from '../helpers/console-world.ts';

const world = useConsoleWorld();

const RECORDS = 500;
const INVALID = [17, 99, 120, 301, 480];
/** The template `notice` of every site (config/sites.ts) names id, 氏名, 品目, 数量, 受注日 and the recipient `email`. */
const HEADER = ['id', '氏名', '品目', '数量', '受注日', 'email'];
const MISSING_COLUMN = '受注日';

/** A field as Excel writes it: quoted only when it holds a comma, a quote or a line break; quotes doubled. */
const excelField = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const excelCsv = (rows: readonly (readonly string[])[]) =>
  iconv.encode(rows.map((r) => r.map(excelField).join(',')).join('\r\n') + '\r\n', 'cp932');

/** The order export: 500 rows, 5 of them with an address that is none; without 受注日 when `missing`. */
function orders(o: { missing: boolean }): Buffer {
  const cols = o.missing ? HEADER.filter((h) => h !== MISSING_COLUMN) : HEADER;
  const rows = Array.from({ length: RECORDS }, (_, i) => {
    const n = i + 1;
    const row: Record<string, string> = {
      id: `A-${n}`,
      氏名: `顧客 ${n}`,
      品目: n % 2 ? '机, 木製' : '椅子 "特注"',
      数量: String((n % 9) + 1),
      受注日: '2026-12-01',
      email: INVALID.includes(n) ? `customer${n}.example.com` : `customer${n}@example.com`,
    };
    return cols.map((c) => row[c]!);
  });
  return excelCsv([cols, ...rows]);
}

async function mailsOf(token: string) {
  const res = await fetchEmulatorPage(new URL('store', world.rt.endpoints.ses!));
  return listedMails(((await res.json()) as { emails: StoredMail[] }).emails, token);
}

async function allMails() {
  const res = await fetchEmulatorPage(new URL('store', world.rt.endpoints.ses!));
  return ((await res.json()) as { emails: StoredMail[] }).emails.length;
}

async function jobCount(): Promise<number> {
  const res = await fetch(`${world.rt.apiUrl}/jobs?limit=100`, {
    headers: { authorization: `Bearer ${world.tokens.sakai}` },
  });
  return ((await res.json()) as { jobs: unknown[] }).jobs.length;
}

async function signInIn(page: Page, lang: Lang): Promise<void> {
  await page.getByLabel(translate(lang, 'signin.token')).fill(world.tokens.sakai);
  await page.getByRole('button', { name: translate(lang, 'signin.submit') }).click();
  await page.getByRole('navigation', { name: translate(lang, 'nav.label') }).waitFor();
}

describe('Console: the whole loop against the real API', { timeout: 180_000 }, () => {
  it.each([
    ['en', 'en-GB', { width: 1280, height: 860 }],
    ['ja', 'ja-JP', { width: 390, height: 844 }],
  ] as const)(
    '%s: check names the missing column, the fixed file runs PARTIAL, corrections mail the 5 rows left, every row once',
    async (lang, locale, viewport) => {
      // Prepare
      const L = (k: MessageKey, p?: Params) => translate(lang, k, p);
      const missingFile = writeTemp(`orders-${lang}.csv`, orders({ missing: true }));
      const fixedFile = writeTemp(`orders-${lang}.csv`, orders({ missing: false }));
      const c = await openConsole(world, { locale, viewport, hash: '#/upload' });
      await signInIn(c.page, lang);
      const jobsBefore = await jobCount();
      const mailsBefore = await allMails();
      const verdict = c.page.getByTestId('check-verdict');
      const runButton = c.page.getByRole('button', { name: L('upload.submit'), exact: true });

      // Act 1: the check of the file without 受注日
      await c.page.getByLabel(L('upload.choose')).setInputFiles(missingFile);
      await c.page.getByLabel(L('upload.processor')).selectOption('mail');
      await c.page.getByLabel(L('upload.template')).fill('notice');
      await c.page.getByRole('button', { name: L('upload.check'), exact: true }).click();
      await expect.poll(() => verdict.getAttribute('data-ok'), { timeout: 30_000 }).toBe('false');
      const missing = await c.page.getByTestId('check-missing').locator('li').allTextContents();
      const runOffWhenMissing = await runButton.isDisabled();
      await expectAccessible(c.page, `check naming the missing column (${lang})`);
      const jobsAfterCheck = await jobCount();
      const mailsAfterCheck = await allMails();

      // Act 2: the check of the fixed file, then the run
      await c.page.getByLabel(L('upload.choose')).setInputFiles(fixedFile);
      await c.page.getByRole('button', { name: L('upload.check'), exact: true }).click();
      await expect.poll(() => verdict.getAttribute('data-ok'), { timeout: 30_000 }).toBe('true');
      const encoding = await c.page.getByTestId('check-encoding').textContent();
      const kinds = await c.page
        .getByTestId('check-sample')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
      const subjects = await c.page.getByTestId('sample-subject').allTextContents();
      const html = await c.page
        .frameLocator('[data-testid="sample-html"]')
        .first()
        .locator('body')
        .textContent();
      const estimateShown = await c.page.getByTestId('check-estimate').isVisible();
      const cost = await c.page.getByTestId('estimate-cost').textContent();
      await expectAccessible(c.page, `check of the fixed file (${lang})`);
      await c.page.screenshot({ path: screenshotPath(`check-real-${lang}`), fullPage: true });
      await runButton.click();
      await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
      const token = shownToken(c.page);
      const firstState = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED'], 120_000);
      const failedShown = await c.page.getByTestId('count-failed').textContent();

      // Act 3: the sheet back
      const downloading = c.page.waitForEvent('download');
      await c.page.getByRole('button', { name: L('results.download') }).click();
      const download = await downloading;
      const results = parseResultsCsv(readFileSync((await download.path())!), 'cp932');
      await expectAccessible(c.page, `finished job with results and corrections (${lang})`);

      // Act 4: the 5 addresses corrected in results.csv, as Excel saves it (CP932, CRLF, its quoting)
      const raw = iconv.decode(readFileSync((await download.path())!), 'cp932');
      const { parse } = await import('csv-parse/sync');
      const sheet = parse(raw) as string[][];
      const emailAt = sheet[0]!.indexOf('email');
      const corrected = sheet.map((row, i) =>
        i > 0 && !row[emailAt]!.includes('@')
          ? row.map((v, j) => (j === emailAt ? v.replace('.', '@') : v))
          : row,
      );
      await c.page
        .getByLabel(L('results.correctionsFile'))
        .setInputFiles(writeTemp(`orders-${lang}-results.csv`, excelCsv(corrected)));
      await c.page.getByRole('button', { name: L('results.upload'), exact: true }).click();
      const started = c.page.getByTestId('resubmit-started');
      await started.waitFor({ timeout: 30_000 });
      const startedText = await started.textContent();
      await c.page.getByTestId('attempt-2').waitFor({ timeout: 30_000 });
      const lastState = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED'], 120_000);
      const attempt2 = await c.page.getByTestId('attempt-2').locator('td').allTextContents();
      await expectAccessible(c.page, `corrections accepted, attempts listed (${lang})`);
      const mails = await mailsOf(token);

      // Assess: the check named the column, and made no job and sent nothing
      expect(missing).toEqual([MISSING_COLUMN]);
      expect(runOffWhenMissing).toBe(true);
      expect(jobsAfterCheck).toBe(jobsBefore);
      expect(mailsAfterCheck).toBe(mailsBefore);
      // the fixed file's check: CP932, three rendered mails, an estimate
      expect(encoding).toMatch(/cp932|shift_jis/i);
      expect(kinds).toEqual(['mail', 'mail', 'mail']);
      expect(subjects).toEqual([1, 2, 3].map((n) => `【堺】ご注文 A-${n} のご案内`));
      expect(html).toContain('顧客 1 様');
      expect(estimateShown).toBe(true);
      expect(cost).toMatch(/US\$.*¥/);
      // the run: PARTIAL, its 5 failures in results.csv
      expect(firstState).toBe('PARTIAL');
      expect(failedShown).toBe('5');
      expect(download.suggestedFilename()).toMatch(/\.csv$/);
      expect(results.rows).toHaveLength(RECORDS);
      expect(results.rows.filter((r) => r.status === 'failed').map((r) => r.record)).toEqual(INVALID);
      expect(new Set(results.rows.filter((r) => r.status === 'failed').map((r) => r.code))).toEqual(
        new Set(['MAIL_INVALID_ADDRESS']),
      );
      // the corrections: attempt 2 ran the 5, the rest were not run again
      expect(startedText).toBe(L('results.started', { attempt: 2, run: 5, notRun: RECORDS - 5 }));
      expect(lastState).toBe('SUCCEEDED');
      expect(attempt2.slice(0, 5)).toEqual(['2', L('state.SUCCEEDED'), '5', '5', '0']);
      // every row mailed exactly once
      expect(mails.map((m) => m.n).sort((a, b) => a! - b!)).toEqual(
        Array.from({ length: RECORDS }, (_, i) => i + 1),
      );
      for (const n of INVALID) expect(mails.find((m) => m.n === n)!.to).toBe(`customer${n}@example.com`);
      expect(await c.problems()).toEqual([]);
      await c.close();
    },
  );
});
