import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { LocalRuntime } from '../../local/runtime.ts';
import { buildConsole } from '../../web/build.ts';
import { CONSOLE_PATH, serveConsole } from '../../web/server.ts';
import { axeViolations, launchChromium, watchPage } from '../helpers/browser.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const sample = (name: string) => join(ROOT, 'samples', name);

/**
 * One browser test file's world: the real local runtime (emulators, API, workers), the console built from
 * the current sources and served with its security headers on the same origin as the API (a small server
 * that serves /console/ and hands every other request to the local API), and one Chromium.
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

function proxy(req: http.IncomingMessage, res: http.ServerResponse, target: string): void {
  const up = http.request(
    target + (req.url ?? '/'),
    { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(String(err));
  });
  req.pipe(up);
}

export async function startConsoleWorld(o: { browserArgs?: readonly string[] } = {}): Promise<ConsoleWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'rowfleet-browser-'));
  const consoleDir = await buildConsole({ outDir: join(dir, 'console') });
  const rt = await LocalRuntime.start({ stateDir: join(dir, 'state') });
  const uploadOrigins = [new URL(rt.endpoints.s3sqs ?? rt.apiUrl).origin];
  const server = http.createServer((req, res) => {
    if (!serveConsole(req, res, { dir: consoleDir, uploadOrigins })) proxy(req, res, rt.apiUrl);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let browser: Browser;
  try {
    browser = await launchChromium(o.browserArgs);
  } catch (err) {
    server.close();
    await rt.stop();
    throw err;
  }
  const tokens = { sakai: await rt.issueToken('sakai'), kawasaki: await rt.issueToken('kawasaki') };
  return {
    rt,
    browser,
    url: origin + CONSOLE_PATH,
    origin,
    tokens,
    async stop() {
      await browser.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rt.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
