import { describe, expect, it } from 'vitest';
import { readZip } from '../helpers/zip.ts';
import {
  apiJob as apiSiteJob,
  checkAndRun,
  openConsole,
  sample,
  shownToken,
  signIn,
  type Site,
  useConsoleWorld,
  waitForState,
  writeTemp,
} from '../helpers/console-world.ts';

const world = useConsoleWorld();

const apiJob = (site: Site, csv: string, query = 'processor=json') => apiSiteJob(world, site, csv, query);

describe('Console: sign-in', () => {
  it('keeps the token in sessionStorage only and sends it as a bearer token on every API request', async () => {
    // Prepare
    const c = await openConsole(world);
    const apiRequests: { url: string; authorization?: string }[] = [];
    c.page.on('request', (r) => {
      if (!r.url().startsWith(world.url))
        apiRequests.push({ url: r.url(), authorization: r.headers().authorization });
    });

    // Act
    await signIn(c.page, world.tokens.sakai);
    await c.page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
    await c.page.getByRole('link', { name: 'Upload' }).click();
    await c.page.getByRole('heading', { name: 'Upload a CSV', level: 1 }).waitFor();
    const session = await c.page.evaluate(() => sessionStorage.getItem('rowfleet.token'));
    const local = await c.page.evaluate(() => JSON.stringify(localStorage));
    const cookies = await c.context.cookies();

    // Assess
    expect(session).toBe(world.tokens.sakai);
    expect(local).not.toContain(world.tokens.sakai);
    expect(cookies).toEqual([]);
    expect(apiRequests.length).toBeGreaterThanOrEqual(2);
    for (const r of apiRequests) {
      expect(new URL(r.url).origin).toBe(world.origin);
      expect(r.authorization).toBe(`Bearer ${world.tokens.sakai}`);
    }
    expect(await c.problems()).toEqual([]);
    await c.close();
  });

  it('refuses a token the API does not accept, and signs out on request', async () => {
    // Prepare
    const c = await openConsole(world);

    // Act
    await c.page.getByLabel('API token').fill('rf_sakai_not-a-real-token');
    await c.page.getByRole('button', { name: 'Sign in' }).click();
    const refused = await c.page.getByRole('alert').textContent();
    await signIn(c.page, world.tokens.sakai);
    await c.page.getByRole('button', { name: 'Sign out' }).click();
    await c.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    const afterSignOut = await c.page.evaluate(() => sessionStorage.getItem('rowfleet.token'));

    // Assess
    expect(refused).toContain('This token was not accepted.');
    expect(afterSignOut).toBeNull();
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: upload, watch, download', () => {
  it('uploads samples/clients.csv, shows it reach SUCCEEDED, and downloads the zip with every record', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles(sample('clients.csv'));
    await checkAndRun(c.page);
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const token = shownToken(c.page);
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED']);
    const counts = {
      total: await c.page.getByTestId('count-total').textContent(),
      succeeded: await c.page.getByTestId('count-succeeded').textContent(),
      failed: await c.page.getByTestId('count-failed').textContent(),
    };
    const downloading = c.page.waitForEvent('download');
    await c.page.getByTestId('download').click();
    const download = await downloading;
    const zip = await readZip((await download.path())!);

    // Assess
    expect(state).toBe('SUCCEEDED');
    expect(counts).toEqual({ total: '10', succeeded: '10', failed: '0' });
    expect(await c.page.getByRole('heading', { level: 1 }).textContent()).toContain('clients.csv');
    expect(download.suggestedFilename()).toBe(`${token}.zip`);
    const names = zip.map((e) => e.name);
    expect(names.slice(0, 2)).toEqual(['manifest.json', 'errors.csv']);
    // results.csv, the user's sheet back, is the zip's last entry.
    expect(names.at(-1)).toBe('results.csv');
    expect(names.slice(2, -1).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `reports/${i + 1}.html`).sort(),
    );
    const manifest = JSON.parse(zip[0]!.data.toString('utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ token, site: 'sakai', state: 'SUCCEEDED' });
    expect(zip.find((e) => e.name === 'reports/4.html')!.data.toString('utf8')).toContain('田中 美咲');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });

  it('uploads samples/bad-rows.csv with the json processor: PARTIAL, the bad record counted as rejected', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles(sample('bad-rows.csv'));
    await c.page.getByLabel('Processor').selectOption('json');
    await checkAndRun(c.page);
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED']);
    const view = await world.rt.deps.jobs.get('sakai', shownToken(c.page));

    // Assess
    expect(state).toBe('PARTIAL');
    expect(await c.page.getByTestId('count-total').textContent()).toBe('3');
    expect(await c.page.getByTestId('count-succeeded').textContent()).toBe('2');
    expect(await c.page.getByTestId('count-rejected').textContent()).toBe('1');
    expect(view).toMatchObject({ processor: 'json', fileName: 'bad-rows.csv', state: 'PARTIAL' });
    await c.page.getByRole('heading', { name: 'First errors' }).waitFor();
    expect(await c.problems()).toEqual([]);
    await c.close();
  });

  it('drops a file on the drop zone and uploads it like a chosen one', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);
    const dataTransfer = await c.page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['id,name\r\n1,dropped\r\n'], 'dropped.csv', { type: 'text/csv' }));
      return dt;
    });

    // Act
    await c.page.getByTestId('dropzone').dispatchEvent('dragover', { dataTransfer });
    await c.page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer });
    const chosen = await c.page.locator('#file-chosen').textContent();
    await checkAndRun(c.page);
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED']);

    // Assess
    expect(chosen).toContain('dropped.csv');
    expect(state).toBe('SUCCEEDED');
    expect(await world.rt.deps.jobs.get('sakai', shownToken(c.page))).toMatchObject({
      fileName: 'dropped.csv',
      totalRecords: 1,
    });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: rejected files', () => {
  const png = Buffer.concat([
    Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'),
    Buffer.alloc(64, 0),
  ]);
  const cases: [string, string, Buffer, string | undefined][] = [
    ['EMPTY_FILE', 'empty.csv', Buffer.alloc(0), undefined],
    ['NOT_CSV', 'picture.png', png, undefined],
    ['UNTERMINATED_QUOTE', 'quote.csv', Buffer.from('id,name\n1,a\n2,"never closed\n3,c\n'), 'Line 3'],
  ];

  it.each(cases)(
    '%s: the check shows the code, the message and the line; Run stays off and no job is made',
    async (code, name, body, line) => {
      // Prepare
      const c = await openConsole(world, { hash: '#/upload' });
      await signIn(c.page, world.tokens.sakai);
      const file = writeTemp(name, body);
      const tokens = async () => (await world.rt.deps.jobs.list('sakai')).map((j) => j.token);
      const jobsBefore = await tokens();

      // Act
      await c.page.getByLabel('Choose a file').setInputFiles(file);
      await c.page.getByRole('button', { name: 'Check', exact: true }).click();
      const check = c.page.getByTestId('check');
      // The file's own error (a 422 of the check) or a problem of the check's answer: either names the code.
      const shownCode = check.locator('[data-testid="error-code"], [data-testid="problem-code"]').first();
      await shownCode.waitFor();
      const text = await check.textContent();

      // Assess
      expect(await shownCode.textContent()).toBe(code);
      if (line) expect(text).toContain(line);
      expect(await c.page.getByRole('button', { name: 'Run', exact: true }).isDisabled()).toBe(true);
      expect(c.page.url()).toMatch(/#\/upload$/);
      expect(await tokens()).toEqual(jobsBefore);
      expect(await c.problems()).toEqual([]);
      await c.close();
    },
  );
});

describe('Console: tenant isolation', () => {
  it("shows a site only its own jobs: another site's job is neither listed nor opened", async () => {
    // Prepare: a job of each site
    const sakaiJob = await apiJob('sakai', 'id,name\n1,堺だけ\n');
    const kawasakiJob = await apiJob('kawasaki', 'id,name\n1,川崎だけ\n');
    const c = await openConsole(world);
    await signIn(c.page, world.tokens.kawasaki);

    // Act
    await c.page.locator(`tr[data-token="${kawasakiJob.token}"]`).waitFor();
    const listed = await c.page
      .locator('tr[data-token]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-token')));
    const pageText = await c.page.locator('main').textContent();
    await c.page.goto(`${world.url}#/jobs/${sakaiJob.token}`);
    await c.page.getByText('There is no such job for this site.').waitFor();
    const detailText = await c.page.locator('main').textContent();

    // Assess
    const sakaiTokens = (await world.rt.deps.jobs.list('sakai', 1000)).map((j) => j.token);
    expect(listed).toContain(kawasakiJob.token);
    expect(listed).not.toContain(sakaiJob.token);
    expect(sakaiTokens).toContain(sakaiJob.token);
    expect(listed.filter((t) => sakaiTokens.includes(t!))).toEqual([]);
    expect(pageText).not.toContain('sakai');
    expect(detailText).not.toContain('堺だけ');
    expect(await c.page.getByTestId('site').textContent()).toBe('Site: kawasaki');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: live jobs list', () => {
  it('shows a job started elsewhere and follows it to SUCCEEDED without reloading the page', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/jobs' });
    await signIn(c.page, world.tokens.sakai);
    await c.page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const csv = 'id,name\n' + Array.from({ length: 250 }, (_, i) => `${i + 1},n${i + 1}`).join('\n') + '\n';

    // Act
    const job = await apiJob(
      'sakai',
      csv,
      'processor=json&simulateDelayMs=10&concurrency=1&fileName=slow.csv',
    );
    const row = c.page.locator(`tr[data-token="${job.token}"]`);
    await row.waitFor();
    const statesSeen = new Set<string>();
    await expect
      .poll(
        async () => {
          const s = (await row.getAttribute('data-state')) ?? '';
          statesSeen.add(s);
          return s;
        },
        { timeout: 30_000, interval: 200 },
      )
      .toBe('SUCCEEDED');
    const records = await row.getByTestId('records').textContent();
    const cells = await row.locator('td').allTextContents();
    const marker = await c.page.evaluate(() => (window as unknown as { marker?: number }).marker);

    // Assess
    expect(statesSeen.has('RUNNING')).toBe(true);
    expect(records).toBe('250 / 250');
    expect(cells[2]).toMatch(/^[\d,]+\/s$/);
    expect(await row.getByRole('link').textContent()).toBe('slow.csv');
    expect(marker).toBe(42);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: load test', () => {
  it('generates 1,000 records in the browser, uploads them with the chosen options and shows the job run', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/loadtest' });
    await signIn(c.page, world.tokens.sakai);
    await c.page.getByLabel('Delay per record (ms)').fill('1');
    await c.page.getByRole('switch', { name: 'Simulated errors' }).check();

    // Act
    await c.page.getByRole('button', { name: '1,000 records' }).click();
    const panel = c.page.getByTestId('loadtest-job');
    await panel.waitFor();
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED'], 60_000);
    const progress = await panel.getByTestId('progress-text').textContent();
    await panel.getByRole('link', { name: 'Open the job' }).click();
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const job = await world.rt.deps.jobs.get('sakai', shownToken(c.page));

    // Assess
    expect(state).toBe('SUCCEEDED');
    expect(progress).toBe('1,000 of 1,000 records');
    expect(job).toMatchObject({
      processor: 'json',
      fileName: 'loadtest-1000.csv',
      totalRecords: 1000,
      succeeded: 1000,
      options: { simulateDelayMs: '1', simulateErrorRate: '0.1' },
    });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});
