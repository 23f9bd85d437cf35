/**
 * Browser tests of the console's loop of issue 20 (Upload → Check → Run; a finished job's results.csv and the
 * upload of its corrections) against a stubbed API: the console is the real one, served by the local runtime (sign-in
 * and the job list are real), and the job routes the loop reads are answered by the test (page.route) with the JSON
 * web/README.md documents, so every answer the screens show is known. The same loop against the real API is
 * console-loop.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Page, Request, Route } from 'playwright-core';
import { translate, type Lang, type MessageKey, type Params } from '../../web/src/messages.ts';
import type { CheckResult, CheckSample, JobView, ResubmitResult } from '../../web/src/types.ts';
import { expectAccessible, openConsole, screenshotPath, useConsoleWorld } from '../helpers/console-world.ts';

const world = useConsoleWorld();

const TOKEN = '5f0c2a8e-1b7d-4c3e-9a51-0d2e6f7a8b90';
/** Bytes as Excel writes a CP932 sheet: the stub never reads them, the tests check they are sent as they are. */
const cp932 = (s: string) => Buffer.from(s, 'latin1');
const MISSING = cp932('email,name\r\n\x82\xa0@example.com,\x88\xa4\r\n');
const FIXED = cp932('email,name,plan\r\na@example.com,\x88\xa4,gold\r\n');
const CORRECTED = cp932('email,name,plan,rowfleet_record\r\nfixed@example.com,\x88\xa4,gold,17\r\n');

function mailSample(n: number): CheckSample {
  return {
    record: n,
    line: n + 1,
    output: {
      kind: 'mail',
      from: 'notice@sakai.example.jp',
      to: `customer${n}@example.com`,
      subject: `【堺】ご契約プランのお知らせ ${n}`,
      text: `お客様 ${n} 様\nプラン: gold\n`,
      html: `<html><head><style>h1 { color: red }</style></head><body><h1>お知らせ ${n}</h1><img src="https://cdn.example.com/logo.png" alt="堺ロゴ"><script>document.title = "ran"</script><p style="color:#0b5cad">プラン: <b>gold</b></p></body></html>`,
    },
  };
}

const missingCheck: CheckResult = {
  check: true,
  site: 'sakai',
  processor: 'mail',
  template: 'notice',
  fileName: 'customers.csv',
  encoding: 'CP932',
  delimiter: ',',
  header: ['email', 'name'],
  records: 500,
  valid: 500,
  ok: false,
  problems: [
    {
      code: 'PROCESSOR_FIELDS_MISSING',
      message: 'Template "notice" names columns the header lacks: plan.',
      columns: ['plan'],
    },
  ],
  rejected: { count: 0, first: [] },
  needs: { columns: ['email', 'name', 'plan'], missing: ['plan'] },
  samples: [],
  estimate: {
    workers: 2,
    workersNow: 2,
    seconds: 95,
    region: 'ap-northeast-1',
    usd: 0.0123,
    jpy: 1.85,
    jpyPerUsd: 150.5,
    pricesAsOf: '2026-11-01',
    breakdown: [
      { service: 'fargate', usd: 0.0071, basis: '2 tasks × 95 s, 0.25 vCPU, 0.5 GB' },
      { service: 'ses', usd: 0.05, basis: '495 mails' },
    ],
  },
};

const okCheck: CheckResult = {
  ...missingCheck,
  header: ['email', 'name', 'plan'],
  valid: 495,
  ok: true,
  problems: [],
  rejected: {
    count: 5,
    first: [17, 99, 120, 301, 480].map((record) => ({
      record,
      line: record + 1,
      code: 'MAIL_INVALID_ADDRESS',
      message: `Record ${record}: "email" is not a mail address.`,
    })),
  },
  needs: { columns: ['email', 'name', 'plan'], missing: [] },
  samples: [1, 2, 3].map(mailSample),
};

function jobView(over: Partial<JobView> = {}): JobView {
  return {
    token: TOKEN,
    site: 'sakai',
    state: 'PARTIAL',
    fileName: 'customers.csv',
    processor: 'mail',
    encoding: 'CP932',
    rows: { total: 500, succeeded: 495, failed: 5, rejected: 0 },
    progress: { done: 500, total: 500, chunksDone: 1, totalChunks: 1 },
    receivedAt: '2026-12-07T01:00:00.000Z',
    finishedAt: '2026-12-07T01:01:40.000Z',
    attempts: [
      {
        n: 1,
        state: 'PARTIAL',
        records: 500,
        succeeded: 495,
        failed: 5,
        startedAt: '2026-12-07T01:00:00.000Z',
        endedAt: '2026-12-07T01:01:40.000Z',
      },
    ],
    retryable: 5,
    ...over,
  };
}

const afterResubmit = jobView({
  state: 'SUCCEEDED',
  rows: { total: 500, succeeded: 500, failed: 0, rejected: 0 },
  finishedAt: '2026-12-07T01:10:05.000Z',
  retryable: 0,
  attempts: [
    ...jobView().attempts!,
    {
      n: 2,
      state: 'SUCCEEDED',
      records: 5,
      succeeded: 5,
      failed: 0,
      startedAt: '2026-12-07T01:10:00.000Z',
      endedAt: '2026-12-07T01:10:05.000Z',
    },
  ],
});

interface Sent {
  readonly method: string;
  readonly url: URL;
  readonly contentType?: string;
  readonly body: Buffer | null;
}

/**
 * The stubbed job routes. `checks`, `resubmits`: the answers in the order they are asked for. The job page reads the
 * job as it is before any resubmit, and after one as `afterResubmit`.
 */
async function stubApi(
  page: Page,
  o: {
    checks: { status: number; body: unknown }[];
    resubmits?: { status: number; body: unknown }[];
  },
): Promise<Sent[]> {
  const sent: Sent[] = [];
  let resubmitted = false;
  const json = (route: Route, status: number, body: unknown) =>
    route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
  const record = (r: Request) => {
    const url = new URL(r.url());
    sent.push({
      method: r.method(),
      url,
      contentType: r.headers()['content-type'],
      body: r.postDataBuffer(),
    });
    return url;
  };
  await page.route(
    (url) => url.origin === world.origin && (url.pathname.startsWith('/jobs/') || url.pathname === '/jobs'),
    async (route) => {
      const r = route.request();
      const url = new URL(r.url());
      if (r.method() === 'GET' && url.pathname === '/jobs') return route.fallback();
      record(r);
      if (r.method() === 'POST' && url.pathname === '/jobs' && url.searchParams.get('check') === 'true') {
        const next = o.checks.shift();
        return next ? json(route, next.status, next.body) : json(route, 500, {});
      }
      if (r.method() === 'POST' && url.pathname === '/jobs')
        return json(route, 202, jobView({ state: 'QUEUED', finishedAt: undefined }));
      if (r.method() === 'GET' && url.pathname === `/jobs/${TOKEN}`)
        return json(route, 200, resubmitted ? afterResubmit : jobView());
      if (r.method() === 'GET' && url.pathname === `/jobs/${TOKEN}/errors`)
        return json(route, 200, { token: TOKEN, total: 0, offset: 0, limit: 20, errors: [] });
      if (r.method() === 'GET' && url.pathname === `/jobs/${TOKEN}/results`)
        return json(route, 200, {
          url: `${world.origin}/stub-download/results.csv`,
          fileName: 'customers-results.csv',
        });
      if (r.method() === 'POST' && url.pathname === `/jobs/${TOKEN}/resubmit`) {
        const next = o.resubmits?.shift() ?? { status: 500, body: {} };
        if (next.status === 202) resubmitted = true;
        return json(route, next.status, next.body);
      }
      return json(route, 404, {
        error: { code: 'NOT_FOUND', message: `stub: ${r.method()} ${url.pathname}` },
      });
    },
  );
  await page.route(`${world.origin}/stub-download/results.csv`, (route) =>
    route.fulfill({
      status: 200,
      headers: {
        'content-type': 'text/csv; charset=Shift_JIS',
        'content-disposition': 'attachment; filename="customers-results.csv"',
      },
      body: FIXED,
    }),
  );
  return sent;
}

async function signInIn(page: Page, lang: Lang, token: string): Promise<void> {
  await page.getByLabel(translate(lang, 'signin.token')).fill(token);
  await page.getByRole('button', { name: translate(lang, 'signin.submit') }).click();
  await page.getByRole('navigation', { name: translate(lang, 'nav.label') }).waitFor();
}

const LANGS = [
  ['en', 'en-GB', { width: 1280, height: 860 }],
  ['ja', 'ja-JP', { width: 390, height: 844 }],
] as const;

describe('Console: Upload → Check → Run (stubbed API)', () => {
  it.each(LANGS)(
    '%s: the check names the missing column and keeps Run off; the fixed file shows samples, rejects and the estimate, then runs',
    async (lang, locale, viewport) => {
      // Prepare
      const L = (k: MessageKey, p?: Params) => translate(lang, k, p);
      const c = await openConsole(world, { locale, viewport, hash: '#/upload' });
      const sent = await stubApi(c.page, {
        checks: [
          { status: 200, body: missingCheck },
          { status: 200, body: okCheck },
        ],
      });
      await signInIn(c.page, lang, world.tokens.sakai);
      const runButton = c.page.getByRole('button', { name: L('upload.submit'), exact: true });
      const checkButton = c.page.getByRole('button', { name: L('upload.check'), exact: true });
      const verdict = c.page.getByTestId('check-verdict');

      // Act: the file whose header lacks the template's column
      await c.page.getByLabel(L('upload.choose')).setInputFiles({
        name: 'customers.csv',
        mimeType: 'text/csv',
        buffer: MISSING,
      });
      await c.page.getByLabel(L('upload.processor')).selectOption('mail');
      await c.page.getByLabel(L('upload.template')).fill('notice');
      const runBeforeCheck = await runButton.isDisabled();
      await checkButton.click();
      await expect.poll(() => verdict.textContent()).toBe(L('check.notOk'));
      const missing = await c.page.getByTestId('check-missing').locator('li').allTextContents();
      const problemsText = await c.page.getByTestId('check-problems').textContent();
      const runAfterBadCheck = await runButton.isDisabled();
      await expectAccessible(c.page, `check with a missing column (${lang})`);

      // Act: the fixed file
      await c.page.getByLabel(L('upload.choose')).setInputFiles({
        name: 'customers.csv',
        mimeType: 'text/csv',
        buffer: FIXED,
      });
      const stale = await c.page.getByTestId('check-stale').textContent();
      const runWhenStale = await runButton.isDisabled();
      await checkButton.click();
      await expect.poll(() => verdict.getAttribute('data-ok')).toBe('true');
      const okVerdict = await verdict.textContent();
      const samples = await c.page
        .getByTestId('check-sample')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
      const subjects = await c.page.getByTestId('sample-subject').allTextContents();
      const tos = await c.page.getByTestId('sample-to').allTextContents();
      const texts = await c.page.getByTestId('sample-text').allTextContents();
      const frame = c.page.getByTestId('sample-html').first();
      const sandbox = await frame.getAttribute('sandbox');
      const frameHeading = await c.page
        .frameLocator('[data-testid="sample-html"]')
        .first()
        .locator('h1')
        .textContent();
      const refusedInFrame = await c.page
        .frameLocator('[data-testid="sample-html"]')
        .first()
        .locator('script, style, [style], img[src]')
        .count();
      const previewNote = await c.page.getByTestId('preview-note').first().textContent();
      const rejectedRows = await c.page.getByTestId('check-rejected-table').locator('tbody tr').count();
      const facts = {
        encoding: await c.page.getByTestId('check-encoding').textContent(),
        records: await c.page.getByTestId('check-records').textContent(),
        valid: await c.page.getByTestId('check-valid').textContent(),
        rejected: await c.page.getByTestId('check-rejected').textContent(),
      };
      const estimate = {
        workers: await c.page.getByTestId('estimate-workers').textContent(),
        cost: await c.page.getByTestId('estimate-cost').textContent(),
        breakdown: await c.page.getByTestId('estimate-breakdown').locator('tbody tr').count(),
        caption: await c.page.getByTestId('estimate-breakdown').locator('caption').textContent(),
      };
      const runWhenOk = await runButton.isDisabled();
      const overflow = await c.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await expectAccessible(c.page, `check that passed, with samples and estimate (${lang})`);
      await c.page.screenshot({ path: screenshotPath(`check-${lang}`), fullPage: true });
      await runButton.click();
      await c.page.waitForURL(new RegExp(`#/jobs/${TOKEN}$`));

      // Assess
      expect(runBeforeCheck).toBe(true);
      expect(missing).toEqual(['plan']);
      expect(problemsText).toContain(L('check.missing', { n: 1 }));
      expect(runAfterBadCheck).toBe(true);
      expect(stale).toBe(L('check.stale'));
      expect(runWhenStale).toBe(true);
      expect(runWhenOk).toBe(false);
      expect(overflow).toBeLessThanOrEqual(0);
      expect(okVerdict).toBe(L('check.ok', { records: 500, valid: 495 }));
      expect(samples).toEqual(['mail', 'mail', 'mail']);
      expect(subjects).toEqual([1, 2, 3].map((n) => `【堺】ご契約プランのお知らせ ${n}`));
      expect(tos).toEqual([1, 2, 3].map((n) => `customer${n}@example.com`));
      expect(texts[0]).toBe('お客様 1 様\nプラン: gold\n');
      expect(sandbox).toBe('');
      expect(frameHeading).toBe('お知らせ 1');
      // What the console's CSP would refuse in the frame is left out, and the preview says so.
      expect(refusedInFrame).toBe(0);
      expect(previewNote).toBe(L('check.previewPlain'));
      expect(rejectedRows).toBe(5);
      expect(facts).toEqual({ encoding: 'CP932', records: '500', valid: '495', rejected: '5' });
      expect(estimate.workers).toBe(L('check.workersValue', { n: 2, now: 2 }));
      expect(estimate.cost).toMatch(/^US\$0\.0123 · ¥1\.85$/);
      expect(estimate.breakdown).toBe(2);
      expect(estimate.caption).toContain('ap-northeast-1');
      const checks = sent.filter((s) => s.url.searchParams.get('check') === 'true');
      expect(checks).toHaveLength(2);
      for (const s of checks) {
        expect(Object.fromEntries(s.url.searchParams)).toEqual({
          check: 'true',
          fileName: 'customers.csv',
          processor: 'mail',
          template: 'notice',
        });
        expect(s.contentType).toBe('text/csv');
      }
      expect(checks[0]!.body).toEqual(MISSING);
      expect(checks[1]!.body).toEqual(FIXED);
      const runs = sent.filter(
        (s) => s.method === 'POST' && s.url.pathname === '/jobs' && !s.url.searchParams.has('check'),
      );
      expect(runs).toHaveLength(1);
      expect(runs[0]!.body).toEqual(FIXED);
      expect(Object.fromEntries(runs[0]!.url.searchParams)).toEqual({
        fileName: 'customers.csv',
        processor: 'mail',
        template: 'notice',
      });
      expect(await c.problems()).toEqual([]);
      await c.close();
    },
  );

  it('a file the check rejects as a whole shows its code and line, and Run stays off', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await stubApi(c.page, {
      checks: [
        {
          status: 422,
          body: {
            error: { code: 'UNTERMINATED_QUOTE', message: 'A quoted field is never closed.', line: 3 },
          },
        },
      ],
    });
    await signInIn(c.page, 'en', world.tokens.sakai);

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles({
      name: 'quote.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('id,name\n1,a\n2,"never closed\n'),
    });
    await c.page.getByRole('button', { name: 'Check', exact: true }).click();
    await c.page.getByTestId('error').waitFor();

    // Assess
    expect(await c.page.getByTestId('error').getByText('The file was rejected').count()).toBe(1);
    expect(await c.page.getByTestId('error-code').textContent()).toBe('UNTERMINATED_QUOTE');
    expect(await c.page.getByTestId('error-line').textContent()).toBe('Line 3');
    expect(await c.page.getByRole('button', { name: 'Run', exact: true }).isDisabled()).toBe(true);
    await expectAccessible(c.page, 'check of a rejected file');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: results and corrections of a finished job (stubbed API)', () => {
  const unknown = {
    error: {
      code: 'RESUBMIT_UNKNOWN_RECORDS',
      message: 'Records 501, 502 are not records of this job.',
      records: [501, 502],
    },
  };
  const accepted: ResubmitResult = {
    token: TOKEN,
    attempt: 2,
    run: 5,
    notRun: [
      { record: 1, status: 'succeeded', reason: 'succeeded in attempt 1' },
      { record: 2, status: 'succeeded', reason: 'succeeded in attempt 1' },
    ],
    notRunCount: 495,
    job: jobView({ state: 'RUNNING', finishedAt: undefined }),
  };

  it.each(LANGS)(
    '%s: downloads results.csv, shows a 422 with what it named, then the accepted attempt and the attempts with their counts',
    async (lang, locale, viewport) => {
      // Prepare
      const L = (k: MessageKey, p?: Params) => translate(lang, k, p);
      const c = await openConsole(world, { locale, viewport, hash: `#/jobs/${TOKEN}` });
      const sent = await stubApi(c.page, {
        checks: [],
        resubmits: [
          { status: 422, body: unknown },
          { status: 202, body: accepted },
        ],
      });
      await signInIn(c.page, lang, world.tokens.sakai);
      await c.page.getByTestId('corrections').waitFor();
      const attemptsBefore = await c.page.getByTestId('attempts-table').count();

      // Act: the sheet back
      const downloading = c.page.waitForEvent('download');
      await c.page.getByRole('button', { name: L('results.download') }).click();
      const download = await downloading;
      // Act: corrections naming records the job does not have, then the right ones
      await c.page.getByLabel(L('results.correctionsFile')).setInputFiles({
        name: 'customers-results.csv',
        mimeType: 'text/csv',
        buffer: CORRECTED,
      });
      await c.page.getByRole('button', { name: L('results.upload'), exact: true }).click();
      const error = c.page.getByTestId('resubmit-error');
      await error.waitFor();
      const refused = {
        code: await error.getByTestId('error-code').textContent(),
        hint: await error.getByTestId('resubmit-hint').textContent(),
        details: await error.getByTestId('resubmit-details').textContent(),
      };
      await expectAccessible(c.page, `refused corrections (${lang})`);
      await c.page.getByRole('button', { name: L('results.upload'), exact: true }).click();
      const started = c.page.getByTestId('resubmit-started');
      await started.waitFor();
      const startedText = await started.textContent();
      const notRunRows = await c.page.getByTestId('not-run-table').locator('tbody tr').count();
      await c.page.getByTestId('attempt-2').waitFor();
      const attempt2 = await c.page.getByTestId('attempt-2').locator('td').allTextContents();
      await expectAccessible(c.page, `accepted corrections and attempts (${lang})`);

      // Assess
      expect(attemptsBefore).toBe(0);
      expect(download.suggestedFilename()).toBe('customers-results.csv');
      expect(refused.code).toBe('RESUBMIT_UNKNOWN_RECORDS');
      expect(refused.hint).toBe(L('results.unknownRecords'));
      expect(refused.details).toContain('501, 502');
      expect(await c.page.getByTestId('resubmit-error').count()).toBe(0);
      expect(startedText).toBe(L('results.started', { attempt: 2, run: 5, notRun: 495 }));
      expect(notRunRows).toBe(2);
      expect(attempt2.slice(0, 5)).toEqual(['2', L('state.SUCCEEDED'), '5', '5', '0']);
      const resubmits = sent.filter((s) => s.url.pathname === `/jobs/${TOKEN}/resubmit`);
      expect(resubmits).toHaveLength(2);
      for (const s of resubmits) {
        expect(s.contentType).toBe('text/csv');
        expect(s.body).toEqual(CORRECTED);
      }
      expect(await c.problems()).toEqual([]);
      await c.close();
    },
  );

  it('names the columns of a changed header', async () => {
    // Prepare
    const c = await openConsole(world, { hash: `#/jobs/${TOKEN}` });
    await stubApi(c.page, {
      checks: [],
      resubmits: [
        {
          status: 422,
          body: {
            error: {
              code: 'RESUBMIT_HEADER_CHANGED',
              message: 'The header differs from the job\'s: "plan" is missing.',
              columns: ['plan'],
            },
          },
        },
      ],
    });
    await signInIn(c.page, 'en', world.tokens.sakai);

    // Act
    await c.page.getByLabel(/^Upload corrections/).setInputFiles({
      name: 'edited.csv',
      mimeType: 'text/csv',
      buffer: MISSING,
    });
    await c.page.getByRole('button', { name: 'Upload corrections', exact: true }).click();
    const error = c.page.getByTestId('resubmit-error');
    await error.waitFor();

    // Assess
    expect(await error.getByTestId('resubmit-hint').textContent()).toBe(
      translate('en', 'results.headerChanged'),
    );
    expect(await error.getByTestId('resubmit-details').textContent()).toBe('columnsplan');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});
