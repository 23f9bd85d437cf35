import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsole, CONSOLE_FILES } from '../../../web/build.ts';
import { CONSOLE_PATH, contentSecurityPolicy, serveConsole } from '../../../web/server.ts';

let dir: string;
let server: http.Server;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-console-'));
  await buildConsole({ outDir: dir, stage: 'local' });
  server = http.createServer((req, res) => {
    if (!serveConsole(req, res, { dir, uploadOrigins: ['https://bucket.s3.ap-northeast-1.amazonaws.com'] })) {
      res.writeHead(418);
      res.end('not the console');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('Function: buildConsole', () => {
  it('writes index.html, one script and one stylesheet, with nothing inline and nothing from another origin', () => {
    // Prepare
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');

    // Act
    const html = read('index.html');
    const js = read('app.js');

    // Assess
    expect(CONSOLE_FILES.map((f) => read(f).length > 0)).toEqual([true, true, true]);
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expect(html).toContain('<link rel="stylesheet" href="app.css" />');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(/\b(import|from)\s*["']https?:/.test(js)).toBe(false);
  });

  it('puts the API base it is given into index.html, escaped', async () => {
    // Prepare
    const out = mkdtempSync(join(tmpdir(), 'rowfleet-console-base-'));

    // Act
    await buildConsole({ outDir: out, apiBase: '/prod/"x' });
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    rmSync(out, { recursive: true, force: true });

    // Assess
    expect(html).toContain('<meta name="rowfleet-api-base" content="/prod/&#34;x" />');
  });
});

describe('Function: serveConsole', () => {
  it('serves the three files under /console/ with the security headers', async () => {
    // Prepare
    const paths = [CONSOLE_PATH, `${CONSOLE_PATH}app.js`, `${CONSOLE_PATH}app.css`];

    // Act
    const responses = await Promise.all(paths.map((p) => fetch(base + p)));

    // Assess
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(responses.map((r) => r.headers.get('content-type'))).toEqual([
      'text/html; charset=utf-8',
      'text/javascript; charset=utf-8',
      'text/css; charset=utf-8',
    ]);
    for (const r of responses) {
      expect(r.headers.get('content-security-policy')).toBe(
        contentSecurityPolicy(['https://bucket.s3.ap-northeast-1.amazonaws.com']),
      );
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('answers 404 for any other file, 405 for other methods, redirects /console, and leaves the rest alone', async () => {
    // Prepare
    const get = (p: string, method = 'GET') => fetch(base + p, { method, redirect: 'manual' });

    // Act
    const r = {
      other: (await get(`${CONSOLE_PATH}build.ts`)).status,
      encoded: (await get(`${CONSOLE_PATH}%2e%2e/package.json`)).status,
      nested: (await get(`${CONSOLE_PATH}src/app.tsx`)).status,
      post: (await get(CONSOLE_PATH, 'POST')).status,
      bare: await get('/console'),
      api: (await get('/jobs')).status,
    };

    // Assess
    expect(r.other).toBe(404);
    // "%2e%2e" is "..": the path leaves /console/, so the request is handed on, never answered with a file
    expect(r.encoded).toBe(418);
    expect(r.nested).toBe(404);
    expect(r.post).toBe(405);
    expect(r.bare.status).toBe(308);
    // Relative, so behind API Gateway /prod/console goes to /prod/console/ (the stage prefix is kept)
    expect(r.bare.headers.get('location')).toBe('console/');
    expect(new URL(r.bare.headers.get('location')!, `${base}/console`).pathname).toBe(CONSOLE_PATH);
    expect(new URL('console/', 'https://api.example/prod/console').pathname).toBe('/prod/console/');
    expect(r.api).toBe(418);
  });

  it('allows scripts, styles and connections to its own origin only, plus the upload origins it is given', () => {
    // Prepare
    const origins = ['https://a.example', 'http://127.0.0.1:4566'];

    // Act
    const csp = contentSecurityPolicy(origins);

    // Assess
    expect(csp).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' https://a.example http://127.0.0.1:4566; " +
        "img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
        "require-trusted-types-for 'script'",
    );
  });
});
