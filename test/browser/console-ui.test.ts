import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { JobView } from '../../core/intake/operations.ts';
import { axeViolations } from '../helpers/browser.ts';
import {
  apiJob as apiSiteJob,
  expectAccessible,
  finishedJob,
  openConsole,
  sample,
  screenshotPath,
  signIn,
  startConsoleWorld,
  waitForState,
  type ConsoleWorld,
} from '../helpers/console-world.ts';

let world: ConsoleWorld;
/** Finished jobs of the site sakai, one per outcome the screens show. */
const jobs: Record<'succeeded' | 'partial' | 'rejected', JobView> = {} as never;

const apiJob = (csv: string, query: string) => apiSiteJob(world, 'sakai', csv, query);
const finished = (token: string) => finishedJob(world, 'sakai', token);

beforeAll(async () => {
  world = await startConsoleWorld();
  const [ok, partial, rejected] = await Promise.all([
    apiJob(readFileSync(sample('clients.csv'), 'utf8'), 'fileName=clients.csv'),
    apiJob(readFileSync(sample('bad-rows.csv'), 'utf8'), 'fileName=bad-rows.csv&processor=json&office=port'),
    apiJob('id,name\n1,"never closed\n', 'fileName=broken.csv'),
  ]);
  jobs.succeeded = await finished(ok.token);
  jobs.partial = await finished(partial.token);
  jobs.rejected = await finished(rejected.token);
});

afterAll(async () => {
  await world?.stop();
});

const heading = (page: Page) => page.getByRole('heading', { level: 1 }).textContent();

describe('Console: languages', () => {
  it('starts in the browser language, switches on request, and remembers the choice', async () => {
    // Prepare
    const c = await openConsole(world, { locale: 'ja-JP' });

    // Act
    const first = { heading: await heading(c.page), lang: await c.page.getAttribute('html', 'lang') };
    await c.page.getByRole('button', { name: 'English' }).click();
    const switched = { heading: await heading(c.page), lang: await c.page.getAttribute('html', 'lang') };
    await c.page.reload();
    await c.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const reloaded = await heading(c.page);
    await c.page.getByRole('button', { name: '日本語' }).click();
    await c.page.getByLabel('API トークン').fill(world.tokens.sakai);
    await c.page.getByRole('button', { name: 'サインイン' }).click();
    await c.page.locator(`tr[data-token="${jobs.partial.token}"]`).waitFor();
    const jaJobs = {
      heading: await heading(c.page),
      state: await c.page.locator(`tr[data-token="${jobs.partial.token}"] .state`).textContent(),
      nav: await c.page.getByRole('navigation').getByRole('link').allTextContents(),
    };

    // Assess
    expect(first).toEqual({ heading: 'サインイン', lang: 'ja' });
    expect(switched).toEqual({ heading: 'Sign in', lang: 'en' });
    expect(reloaded).toBe('Sign in');
    expect(jaJobs).toEqual({
      heading: 'ジョブ一覧',
      state: '一部失敗',
      nav: ['アップロード', 'ジョブ一覧', '負荷テスト', 'ご利用状況'],
    });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: accessibility', () => {
  const screens: [string, string, (p: Page) => Promise<unknown>][] = [
    ['upload', '#/upload', (p) => p.getByLabel(/Choose a file|ファイルを選択/).waitFor()],
    ['jobs', '#/jobs', (p) => p.getByTestId('jobs-table').waitFor()],
    ['job detail (succeeded)', '', (p) => waitForState(p, ['SUCCEEDED'])],
    ['job detail (partial)', '', (p) => waitForState(p, ['PARTIAL'])],
    ['job detail (rejected)', '', (p) => waitForState(p, ['REJECTED'])],
    ['load test', '#/loadtest', (p) => p.getByRole('switch').waitFor()],
    ['usage', '#/usage', (p) => p.locator('#usage-from').waitFor()],
  ];
  const hashOf = (name: string, hash: string) =>
    name.includes('succeeded')
      ? `#/jobs/${jobs.succeeded.token}`
      : name.includes('partial')
        ? `#/jobs/${jobs.partial.token}`
        : name.includes('rejected')
          ? `#/jobs/${jobs.rejected.token}`
          : hash;

  it.each([
    ['English on a laptop', 'en-GB', { width: 1280, height: 860 }],
    ['Japanese on a phone', 'ja-JP', { width: 390, height: 844 }],
  ] as const)('axe finds no violation on any screen: %s', async (_, locale, viewport) => {
    // Prepare
    const c = await openConsole(world, { locale, viewport });
    await c.page.locator('#token').waitFor();
    const found: Record<string, unknown> = {};

    // Act
    await expectAccessible(c.page, 'sign-in');
    await c.page.locator('#token').fill(world.tokens.sakai);
    await c.page.locator('#token').press('Enter');
    await c.page.getByRole('navigation').waitFor();
    for (const [name, hash, ready] of screens) {
      await c.page.goto(world.url + hashOf(name, hash));
      await ready(c.page);
      await expectAccessible(c.page, name);
      found[name] = await heading(c.page);
    }
    const overflow = await c.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

    // Assess
    expect(Object.keys(found)).toHaveLength(screens.length);
    expect(overflow).toBeLessThanOrEqual(0);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });

  it('a file the check rejects, shown with its code and line, has no violation either', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles({
      name: 'broken.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('id,name\n1,"never closed\n'),
    });
    await c.page.getByRole('button', { name: 'Check', exact: true }).click();
    await c.page
      .locator('[data-testid="check"] [data-testid="error-code"], [data-testid="problem-code"]')
      .first()
      .waitFor();

    // Assess
    await expectAccessible(c.page, 'rejected file at its check');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: keyboard', () => {
  it('works from the keyboard alone: sign-in, skip link, navigation, focus on each new screen, visible focus', async () => {
    // Prepare
    const c = await openConsole(world);
    const focused = () =>
      c.page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        const style = el ? getComputedStyle(el) : undefined;
        return {
          tag: el?.tagName.toLowerCase(),
          text: el?.textContent?.trim(),
          id: el?.id,
          outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '',
        };
      });

    // Act: sign in with Tab and Enter only
    await c.page.keyboard.press('Tab');
    const skip = await focused();
    let guard = 0;
    while ((await focused()).id !== 'token' && guard++ < 10) await c.page.keyboard.press('Tab');
    await c.page.keyboard.type(world.tokens.sakai);
    await c.page.keyboard.press('Enter');
    await c.page.getByRole('navigation').waitFor();
    // The signed-in screen takes the focus on its heading (announced by screen readers); from there, back up
    // (Shift+Tab) to the navigation's "Upload" link.
    await expect.poll(async () => (await focused()).id).toBe('screen-title');
    const afterSignIn = await focused();
    guard = 0;
    while ((await focused()).text !== 'Upload' && guard++ < 15) await c.page.keyboard.press('Shift+Tab');
    const uploadLink = await focused();
    await c.page.keyboard.press('Enter');
    await c.page.getByRole('heading', { name: 'Upload a CSV' }).waitFor();
    await expect.poll(async () => (await focused()).id).toBe('screen-title');
    const afterNavigate = await focused();

    // Assess
    expect(afterSignIn.tag).toBe('h1');
    expect(skip.text).toBe('Skip to content');
    expect(skip.outline).toMatch(/^solid [3-9]px$/);
    expect(uploadLink).toMatchObject({ tag: 'a', text: 'Upload' });
    expect(uploadLink.outline).toMatch(/^solid [3-9]px$/);
    expect(afterNavigate).toMatchObject({ tag: 'h1', text: 'Upload a CSV' });
    expect(await c.page.title()).toBe('Upload a CSV – Rowfleet');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: what it loads', () => {
  it('is served with a strict Content-Security-Policy and loads nothing from another origin', async () => {
    // Prepare
    const c = await openConsole(world, { hash: '#/jobs' });
    const requested: string[] = [];
    c.page.on('request', (r) => requested.push(r.url()));

    // Act
    const res = await fetch(world.url);
    const html = await res.text();
    await c.page.reload();
    await signIn(c.page, world.tokens.sakai);
    await c.page.getByTestId('jobs-table').waitFor();
    await c.page.goto(`${world.url}#/jobs/${jobs.partial.token}`);
    await waitForState(c.page, ['PARTIAL']);

    // Assess
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=/);
    expect(requested.length).toBeGreaterThan(3);
    expect(requested.filter((u) => new URL(u).origin !== world.origin)).toEqual([]);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});

describe('Console: screenshots', () => {
  it('takes screenshots of the main screens (docs/screenshots/ with ROWFLEET_SCREENSHOTS=update)', async () => {
    // Prepare: one job still running, so the list shows every kind of state
    const running = await apiJob(
      'id,name\n' + Array.from({ length: 3000 }, (_, i) => `${i + 1},n`).join('\n'),
      'fileName=orders-2026-11.csv&processor=json&simulateDelayMs=5',
    );
    const c = await openConsole(world);
    const shots: string[] = [];
    const shot = async (name: string, page: Page = c.page) => {
      const path = screenshotPath(name);
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.screenshot({ path, fullPage: true });
      shots.push(path);
    };

    // Act
    await c.page.locator('#token').waitFor();
    await shot('sign-in');
    await signIn(c.page, world.tokens.sakai);
    await c.page.goto(`${world.url}#/upload`);
    await c.page.getByLabel('Choose a file').setInputFiles(sample('clients.csv'));
    await shot('upload');
    await c.page.goto(`${world.url}#/jobs`);
    await c.page.locator(`tr[data-token="${running.token}"]`).waitFor();
    await shot('jobs');
    await c.page.goto(`${world.url}#/jobs/${jobs.succeeded.token}`);
    await waitForState(c.page, ['SUCCEEDED']);
    await shot('job-detail');
    await c.page.goto(`${world.url}#/jobs/${jobs.rejected.token}`);
    await waitForState(c.page, ['REJECTED']);
    await shot('job-rejected');
    await c.page.goto(`${world.url}#/loadtest`);
    await c.page.getByRole('button', { name: '1,000 records' }).click();
    await waitForState(c.page, ['SUCCEEDED']);
    await shot('load-test');
    const phone = await openConsole(world, { locale: 'ja-JP', viewport: { width: 390, height: 844 } });
    await phone.page.locator('#token').fill(world.tokens.sakai);
    await phone.page.locator('#token').press('Enter');
    await phone.page.locator(`tr[data-token="${running.token}"]`).waitFor();
    await shot('jobs-phone-ja', phone.page);

    // Assess
    for (const path of shots) {
      const png = readFileSync(path);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(png.readUInt32BE(16)).toBeGreaterThanOrEqual(390);
    }
    expect(shots).toHaveLength(7);
    expect(await c.problems()).toEqual([]);
    expect(await phone.problems()).toEqual([]);
    await phone.close();
    await c.close();
  });
});

describe('Console: the checks themselves', () => {
  it('axe reports a planted violation; the CSP blocks a planted inline script and style, and the page reports both', async () => {
    // Prepare
    const c = await openConsole(world);
    await c.page.locator('#token').waitFor();

    // Act
    const scriptError = await c.page.evaluate(() => {
      const input = document.createElement('input');
      input.type = 'text';
      document.querySelector('main')!.append(input);
      const styled = document.createElement('p');
      styled.setAttribute('style', 'color: red');
      styled.textContent = 'styled';
      document.querySelector('main')!.append(styled);
      try {
        const script = document.createElement('script');
        script.textContent = 'window.plantedScriptRan = true';
        document.body.append(script);
        return '';
      } catch (err) {
        return String(err);
      }
    });
    const violations = await axeViolations(c.page);
    const ran = await c.page.evaluate(() => 'plantedScriptRan' in window);
    const color = await c.page.getByText('styled').evaluate((el) => getComputedStyle(el).color);
    const problems = await c.problems();

    // Assess
    expect(violations.map((v) => v.id)).toContain('label');
    expect(ran).toBe(false);
    expect(scriptError).toContain('TrustedScript');
    expect(color).not.toBe('rgb(255, 0, 0)');
    expect(problems.some((p) => p.startsWith('CSP violation: require-trusted-types-for'))).toBe(true);
    expect(problems.some((p) => p.startsWith('CSP violation: style-src-attr'))).toBe(true);
    await c.close();
  });
});
