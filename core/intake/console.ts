/**
 * How the web console (web/) is served, once, for both servers: the local API (web/server.ts serveConsole) and, on
 * AWS, the console function behind the REST API (lambdas/console/handler.ts). Same origin as the API, so the
 * console's API calls need no CORS; the only other origin it talks to is the bucket's, for presigned uploads.
 */

/** Where the console is served: under the API's own origin (the API is at `../` from there). */
export const CONSOLE_PATH = '/console/';

/** The built console: exactly these files, served as they are (web/build.ts writes them). */
export const CONSOLE_FILES = ['index.html', 'app.js', 'app.css'] as const;
export type ConsoleFile = (typeof CONSOLE_FILES)[number];

const TYPES: Record<ConsoleFile, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * The console's Content-Security-Policy: only its own origin for scripts, styles and API calls; nothing inline;
 * no plugins, frames, forms or base changes. `uploadOrigins` are where presigned uploads go (the bucket's S3
 * endpoint, e.g. https://<bucket>.s3.<region>.amazonaws.com; locally the emulator's), which the browser must be
 * allowed to POST to.
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
    // Browsers ignore it on plain HTTP (the local runtime); on AWS the API is HTTPS only.
    'strict-transport-security': 'max-age=31536000',
    'cache-control': 'no-cache',
  };
}

/** What to answer a request for the console: a status, headers, and the file to send (200) if any. */
export interface ConsoleAnswer {
  readonly status: 200 | 308 | 404 | 405;
  readonly headers: Record<string, string>;
  readonly file?: ConsoleFile;
  /** Only headers for HEAD. */
  readonly head?: boolean;
}

/**
 * Routes a request path under `base`: GET/HEAD of the three files (`base` itself is index.html), a redirect of
 * the bare path (relative, `console/`, so it keeps an API Gateway stage prefix such as `/prod`), 404 for any other
 * name, 405 for other methods. Undefined for a path outside the console (a server hands it to the API).
 */
export function consoleAnswer(
  method: string,
  pathname: string,
  uploadOrigins: readonly string[] = [],
  base = CONSOLE_PATH,
): ConsoleAnswer | undefined {
  const bare = base.replace(/\/$/, '');
  if (pathname === bare) {
    return { status: 308, headers: { location: `${bare.slice(bare.lastIndexOf('/') + 1)}/` } };
  }
  if (!pathname.startsWith(base)) return undefined;
  const headers = consoleHeaders(uploadOrigins);
  if (method !== 'GET' && method !== 'HEAD')
    return { status: 405, headers: { ...headers, allow: 'GET, HEAD' } };
  const name = pathname.slice(base.length) || 'index.html';
  const file = CONSOLE_FILES.find((f) => f === name);
  if (!file) return { status: 404, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' } };
  return { status: 200, headers: { ...headers, 'content-type': TYPES[file] }, file, head: method === 'HEAD' };
}
