import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CONSOLE_FILES } from './build.ts';

/** Where the console is served: the API's origin, under this path (the API is at `../` from there). */
export const CONSOLE_PATH = '/console/';

const TYPES: Record<(typeof CONSOLE_FILES)[number], string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * The console's Content-Security-Policy: only its own origin for scripts, styles and API calls; nothing inline;
 * no plugins, frames, forms or base changes. `uploadOrigins` are where presigned uploads go (the bucket's
 * S3 endpoint, e.g. https://<bucket>.s3.<region>.amazonaws.com; locally the emulator's), which the browser
 * must be allowed to POST to.
 */
export function contentSecurityPolicy(uploadOrigins: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src ${["'self'", ...uploadOrigins].join(' ')}`,
    "img-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
  ].join('; ');
}

/** The security headers of every console response. */
export function consoleHeaders(uploadOrigins: readonly string[] = []): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy(uploadOrigins),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=()',
    'cache-control': 'no-cache',
  };
}

export interface ServeConsoleOptions {
  /** The built console (buildConsole / consoleAssets). */
  readonly dir: string;
  /** @default CONSOLE_PATH */
  readonly path?: string;
  readonly uploadOrigins?: readonly string[];
}

/**
 * Serves the built console under `path` (GET/HEAD of its three files; `path` itself is index.html) with the
 * security headers. Answers whether it handled the request, so a server can hand everything else to the API.
 */
export function serveConsole(req: IncomingMessage, res: ServerResponse, o: ServeConsoleOptions): boolean {
  const base = o.path ?? CONSOLE_PATH;
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  if (pathname === base.replace(/\/$/, '')) {
    res.writeHead(308, { location: base });
    res.end();
    return true;
  }
  if (!pathname.startsWith(base)) return false;
  const headers = consoleHeaders(o.uploadOrigins);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...headers, allow: 'GET, HEAD' });
    res.end();
    return true;
  }
  const name = pathname.slice(base.length) || 'index.html';
  const file = CONSOLE_FILES.find((f) => f === name);
  if (!file) {
    res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
    res.end('Not found');
    return true;
  }
  const body = readFileSync(join(o.dir, file));
  res.writeHead(200, { ...headers, 'content-type': TYPES[file], 'content-length': String(body.length) });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
