/**
 * Browser tests of the console screens that need the routes issue 11 added: GET /jobs/{token}/errors, DELETE
 * /jobs/{token}, POST /jobs/{token}/retry, GET /usage, the `maxFailureRate` option, and a presigned upload from a
 * browser with web security on (the embedded S3 answers the bucket's CORS rule). The JSON each route answers is in
 * web/README.md.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { reportQueueName } from '../../core/jobs/keys.ts';
import { readZip } from '../helpers/zip.ts';
import {
  apiJob as apiSiteJob,
  checkAndRun,
  expectAccessible,
  finishedJob,
  openConsole,
  sample,
  screenshotPath,
  shownToken,
  signIn,
  type Site,
  useConsoleWorld,
  waitForState,
  writeTemp,
} from '../helpers/console-world.ts';

const world = useConsoleWorld();

const apiJob = (csv: string, query: string, site: Site = 'sakai') => apiSiteJob(world, site, csv, query);
const finished = (token: string, site: Site = 'sakai') => finishedJob(world, site, token);

describe('Console: errors table (GET /jobs/{token}/errors)', () => {
  it('shows the first errors of samples/bad-rows.csv: line, record, code, message and raw', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles(sample('bad-rows.csv'));
    await c.page.getByLabel('Processor').selectOption('json');
    await checkAndRun(c.page);
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    await waitForState(c.page, ['PARTIAL']);
    const table = c.page.getByTestId('errors-table');
    await table.waitFor();
    const caption = await table.locator('caption').textContent();
    const cells = await table.locator('tbody tr').first().locator('td').allTextContents();

    // Assess
    expect(caption).toBe('Rows 1–1 of 1');
    expect(cells[0]).toBe('3');
    expect(cells[1]).toBe('2');
    expect(cells[2]).toBe('COLUMN_COUNT');
    expect(cells[3]!.length).toBeGreaterThan(5);
    expect(cells[4]).toBe('2,鈴木');
    await expectAccessible(c.page, 'job detail with errors');
    await c.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await c.page.screenshot({ path: screenshotPath('job-errors'), fullPage: true });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });

  it('pages through more errors than fit one page', async () => {
    // Prepare: 25 records with a wrong number of fields among 30
    const rows = Array.from({ length: 30 }, (_, i) => (i < 25 ? `${i + 1}` : `${i + 1},ok`));
    const job = await apiJob(`id,name\n${rows.join('\n')}\n`, 'processor=json&fileName=many-bad.csv');
    await finished(job.token);
    const c = await openConsole(world, { hash: `#/jobs/${job.token}` });
    await signIn(c.page, world.tokens.sakai);
    const caption = c.page.getByTestId('errors-table').locator('caption');

    // Act
    await caption.waitFor();
    const first = await caption.textContent();
    await c.page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(() => caption.textContent()).toBe('Rows 21–25 of 25');
    const lastLines = await c.page
      .getByTestId('errors-table')
      .locator('tbody tr td:first-child')
      .allTextContents();

    // Assess
    expect(first).toBe('Rows 1–20 of 25');
    expect(lastLines).toEqual(['22', '23', '24', '25', '26']);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: cancel (DELETE /jobs/{token})', () => {
  it('cancels a slow job: CANCELLED within 10 s, no worker left, its queue gone, a zip of what was done', async () => {
    // Prepare: 10,000 records at 20 ms each: minutes of work
    const c = await openConsole(world, { hash: '#/loadtest' });
    await signIn(c.page, world.tokens.sakai);
    await c.page.getByLabel('Delay per record (ms)').fill('20');
    await c.page.getByRole('button', { name: '10,000 records' }).click();
    await c.page.getByRole('link', { name: 'Open the job' }).click();
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const token = shownToken(c.page);
    await waitForState(c.page, ['RUNNING']);

    // Act
    await c.page.getByRole('button', { name: 'Cancel job' }).click();
    const asked = Date.now();
    await c.page.getByRole('button', { name: 'Yes, cancel' }).click();
    const state = await waitForState(c.page, ['CANCELLED', 'SUCCEEDED', 'PARTIAL', 'FAILED'], 10_000);
    const seconds = (Date.now() - asked) / 1000;
    const downloading = c.page.waitForEvent('download');
    await c.page.getByTestId('download').click();
    const zip = await readZip((await (await downloading).path())!);
    const manifest = JSON.parse(zip[0]!.data.toString('utf8')) as {
      state: string;
      counts: { succeeded: number };
    };
    const rows = zip.filter((e) => e.name.startsWith('rows/')).map((e) => e.name);

    // Assess
    expect(state).toBe('CANCELLED');
    expect(seconds).toBeLessThan(10);
    expect(await c.page.getByRole('button', { name: 'Cancel job' }).count()).toBe(0);
    expect(world.rt.launcher.running(token)).toEqual([]);
    expect(await world.rt.deps.queues.queueUrl(reportQueueName(world.rt.stage, token))).toBeUndefined();
    expect(manifest.state).toBe('CANCELLED');
    expect(new Set(rows).size).toBe(rows.length);
    expect(rows.length).toBe(manifest.counts.succeeded);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: retry (POST /jobs/{token}/retry)', () => {
  it("runs the records a cancel left as the same job's second attempt, shows the attempts, and offers no second retry", async () => {
    // Prepare: a slow job cancelled before its records ran (every record CANCELLED, which a retry runs)
    const csv = 'id,name\n' + [1, 2, 3, 4, 5].map((n) => `${n},name ${n}`).join('\n') + '\n';
    const original = await apiJob(csv, 'processor=json&simulateDelayMs=1000&fileName=slow.csv');
    await fetch(`${world.rt.apiUrl}/jobs/${original.token}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${world.tokens.sakai}` },
    });
    const cancelled = await finished(original.token);
    const c = await openConsole(world, { hash: `#/jobs/${original.token}` });
    await signIn(c.page, world.tokens.sakai);
    await waitForState(c.page, ['CANCELLED']);

    // Act
    await c.page.getByRole('button', { name: `Retry ${cancelled.rows.failed} records` }).click();
    await c.page.getByTestId('attempt-2').waitFor();
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED', 'CANCELLED']);
    const job = await world.rt.deps.jobs.get('sakai', original.token);

    // Assess: the same job, its second attempt ran what the cancel left, nothing is left to retry
    expect(shownToken(c.page)).toBe(original.token);
    expect(state).toBe('SUCCEEDED');
    expect(await c.page.getByTestId('count-total').textContent()).toBe('5');
    expect(await c.page.getByTestId('attempts-table').locator('tbody tr').count()).toBe(2);
    expect(job).toMatchObject({ attempt: 2, succeeded: 5, failed: 0, retryable: 0 });
    expect(await c.page.getByTestId('retry').count()).toBe(0);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: usage (GET /usage)', () => {
  it("shows the site's figures per day and office and a preview of the next usage mail, none of another site", async () => {
    // Prepare: sakai: clients.csv at main (10 ok), bad-rows.csv at port (2 ok, 1 rejected), a rejected file;
    // kawasaki: one job that must not show
    const jobs = await Promise.all([
      apiJob(readFileSync(sample('clients.csv'), 'utf8'), 'fileName=clients.csv&office=main'),
      apiJob(readFileSync(sample('bad-rows.csv'), 'utf8'), 'processor=json&office=port'),
      apiJob('', 'fileName=empty.csv&office=main'),
    ]);
    for (const j of jobs) await finished(j.token);
    await finished((await apiJob('id\n1\n2\n3\n', 'processor=json', 'kawasaki')).token, 'kawasaki');
    const c = await openConsole(world, { hash: '#/usage' });
    await signIn(c.page, world.tokens.sakai);

    // Act
    const table = c.page.getByTestId('usage-table');
    await table.waitFor();
    const total = await c.page.getByTestId('usage-total').locator('td').allTextContents();
    const subject = await c.page.getByTestId('mail-subject').textContent();
    const text = await c.page.getByTestId('mail-text').textContent();
    const main = await c.page.locator('main').textContent();

    // Assess: figures of everything this file ran for sakai so far include these three jobs
    expect(total[0]).toBe('Total');
    expect(Number(total[1]!.replace(/,/g, ''))).toBeGreaterThanOrEqual(3);
    expect(subject).toContain('【Rowfleet】堺 ご利用状況のお知らせ');
    expect(text).toContain('堺本社');
    expect(main).not.toContain('川崎');
    await expectAccessible(c.page, 'usage');
    await c.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await c.page.screenshot({ path: screenshotPath('usage'), fullPage: true });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: maxFailureRate', () => {
  it('sends the failure threshold of "More options" with the job, which keeps it', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);
    const sent: string[] = [];
    c.page.on('request', (r) => {
      if (r.method() === 'POST') sent.push(r.url());
    });

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles(sample('clients.csv'));
    await c.page.getByText('More options').click();
    await c.page.getByLabel(/Stop when more than this share/).fill('0.1');
    await checkAndRun(c.page);
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const job = await world.rt.deps.jobs.get('sakai', shownToken(c.page));

    // Assess
    expect(
      new URL(
        sent.find((u) => new URL(u).pathname === '/jobs' && !u.includes('check=true'))!,
      ).searchParams.get('maxFailureRate'),
    ).toBe('0.1');
    expect(JSON.stringify(job)).toContain('maxFailureRate');
    await c.close();
  });
});

describe('Console: presigned upload with the S3 CORS rule', () => {
  it('sends a file above the direct-upload limit through POST /uploads and the presigned POST, with progress, web security on', async () => {
    // Prepare: 5 records of ~0.95 MB each, above the 4,500,000-byte direct-upload limit
    const big = 'x'.repeat(950_000);
    const csv = 'id,data\n' + [1, 2, 3, 4, 5].map((n) => `${n},${big}`).join('\n') + '\n';
    const file = writeTemp('large.csv', csv);
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);
    const s3 = new URL(world.rt.endpoints.s3sqs!).origin;
    const posts: string[] = [];
    c.page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    await c.page.evaluate(() => {
      // Record every value the progress bar takes.
      const seen: number[] = [];
      (window as unknown as { progressSeen: number[] }).progressSeen = seen;
      new MutationObserver(() => {
        const p = document.querySelector<HTMLProgressElement>('#upload-progress');
        if (p) seen.push(p.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles(file);
    await checkAndRun(c.page);
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const progressSeen = await c.page.evaluate(
      () => (window as unknown as { progressSeen: number[] }).progressSeen,
    );
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED', 'REJECTED']);
    const job = await world.rt.deps.jobs.get('sakai', shownToken(c.page));

    // Assess: the browser's own CORS check passed (this file's Chromium runs with web security on)
    expect(csv.length).toBeGreaterThan(4_500_000);
    expect(posts.filter((u) => u.startsWith(world.origin)).map((u) => new URL(u).pathname)).toEqual([
      '/uploads',
    ]);
    expect(posts.filter((u) => u.startsWith(s3))).toHaveLength(1);
    expect(Math.max(...progressSeen)).toBe(100);
    expect(state).toBe('SUCCEEDED');
    expect(job).toMatchObject({ upload: 'presigned', fileName: 'large.csv', totalRecords: 5, succeeded: 5 });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});
