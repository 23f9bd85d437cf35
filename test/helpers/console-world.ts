import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { JobView } from '../../core/intake/operations.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { axeViolations, launchChromium, watchPage } from './browser.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const sample = (name: string) => join(ROOT, 'samples', name);

/**
 * One browser test file's world: the real local runtime (emulators, API, workers), whose local API serves the
 * console (built from the current sources when they changed: web/build.ts consoleAssets) with its security headers on
 * the API's own origin, as `rowfleet dev` does; and one Chromium (web security on: the embedded S3 answers the
 * bucket's CORS rule).
 */
export interface ConsoleWorld {
  readonly rt: LocalRuntime;
  readonly browser: Browser;
  /** The console's URL (…/console/), whose origin also answers the API. */
  readonly url: string;
  readonly origin: string;
  readonly tokens: Record<'sakai' | 'kawasaki', string>;
  stop(): Promise<void>;
}

export async function startConsoleWorld(o: { browserArgs?: readonly string[] } = {}): Promise<ConsoleWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'rowfleet-browser-'));
  const rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
  let browser: Browser;
  try {
    browser = await launchChromium(o.browserArgs);
  } catch (err) {
    await rt.stop();
    throw err;
  }
  const tokens = { sakai: await rt.issueToken('sakai'), kawasaki: await rt.issueToken('kawasaki') };
  return {
    rt,
    browser,
    url: rt.consoleUrl,
    origin: new URL(rt.apiUrl).origin,
    tokens,
    async stop() {
      await browser.close();
      await rt.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The world of a test file: started before its tests, stopped after them. The object is filled in when the
 * tests start (read it inside tests and hooks, not at the file's top level).
 */
export function useConsoleWorld(): ConsoleWorld {
  const world = {} as { -readonly [K in keyof ConsoleWorld]: ConsoleWorld[K] };
  beforeAll(async () => {
    Object.assign(world, await startConsoleWorld());
  });
  afterAll(async () => {
    await world.stop?.();
  });
  return world;
}

export interface ConsolePage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Page errors, console errors and CSP violations seen so far. */
  problems(): Promise<string[]>;
  close(): Promise<void>;
}

/** A fresh browser context (its own sessionStorage and localStorage) on the console. */
export async function openConsole(
  world: ConsoleWorld,
  o: { locale?: string; viewport?: { width: number; height: number }; hash?: string } = {},
): Promise<ConsolePage> {
  const context = await world.browser.newContext({
    locale: o.locale ?? 'en-GB',
    viewport: o.viewport ?? { width: 1280, height: 860 },
    acceptDownloads: true,
    timezoneId: 'Asia/Tokyo',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const watch = await watchPage(page);
  await page.goto(world.url + (o.hash ?? ''));
  return { context, page, problems: watch.problems, close: () => context.close() };
}

export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(true);
}

/**
 * Upload → Check → Run on the upload screen (English): checks the chosen file with its options, and runs it once
 * Run is on (the check passed, or the file is too large to be checked before its run).
 */
export async function checkAndRun(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  const run = page.getByRole('button', { name: 'Run', exact: true });
  await expect.poll(() => run.isEnabled(), { timeout: 30_000 }).toBe(true);
  await run.click();
}

/** Waits until the job detail page shows one of `states`; answers the state shown. */
export async function waitForState(page: Page, states: string[], timeoutMs = 40_000): Promise<string> {
  const el = page.getByTestId('job-state').first();
  await expect
    .poll(async () => (await el.getAttribute('data-state').catch(() => null)) ?? '', { timeout: timeoutMs })
    .toSatisfy((s: string) => states.includes(s));
  return (await el.getAttribute('data-state'))!;
}

/** The job token of the detail page shown (from the URL: #/jobs/<token>). */
export function shownToken(page: Page): string {
  const m = /#\/jobs\/([0-9a-f-]{36})$/.exec(page.url());
  if (!m) throw new Error(`not on a job page: ${page.url()}`);
  return m[1]!;
}

/** Asserts axe finds no violation on the page as it is now. */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, `axe on ${what}`).toEqual([]);
}

/**
 * Screenshots of the main screens: into docs/screenshots/ when ROWFLEET_SCREENSHOTS=update
 * (`npm run screenshots`), else into a temporary folder, so a test run leaves the work tree as it was.
 */
export function screenshotPath(name: string): string {
  const dir =
    process.env.ROWFLEET_SCREENSHOTS === 'update'
      ? join(ROOT, 'docs', 'screenshots')
      : join(tmpdir(), 'rowfleet-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}.png`);
}

export function writeTemp(name: string, data: Buffer | string): string {
  const dir = mkdtempSync(join(tmpdir(), 'rowfleet-upload-'));
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

export type Site = keyof ConsoleWorld['tokens'];

/** A job started through the API itself (not the console), as another client of the site would. */
export async function apiJob(world: ConsoleWorld, site: Site, csv: string, query: string): Promise<JobView> {
  const res = await fetch(`${world.rt.apiUrl}/jobs?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${world.tokens[site]}`, 'content-type': 'text/csv' },
    body: csv,
  });
  return (await res.json()) as JobView;
}

/** The job's view once it has ended (polled through the API every 100 ms, for 30 s at most). */
export async function finishedJob(world: ConsoleWorld, site: Site, token: string): Promise<JobView> {
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${world.rt.apiUrl}/jobs/${token}`, {
      headers: { authorization: `Bearer ${world.tokens[site]}` },
    });
    const view = (await res.json()) as JobView;
    if (isTerminal(view.state)) return view;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${token} did not finish`);
}
