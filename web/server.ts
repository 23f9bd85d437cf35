import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import {
  CONSOLE_PATH,
  consoleAnswer,
  consoleHeaders,
  contentSecurityPolicy,
} from '../core/intake/console.ts';

// How the console is served (paths, types, security headers) is core's (core/intake/console.ts), shared with the
// console function that serves it on AWS (lambdas/console/handler.ts).
export { CONSOLE_PATH, consoleHeaders, contentSecurityPolicy };

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
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  const a = consoleAnswer(req.method ?? 'GET', pathname, o.uploadOrigins, o.path ?? CONSOLE_PATH);
  if (!a) return false;
  if (a.status !== 200 || !a.file) {
    res.writeHead(a.status, a.headers);
    res.end(a.status === 404 ? 'Not found' : undefined);
    return true;
  }
  const body = readFileSync(join(o.dir, a.file));
  res.writeHead(200, { ...a.headers, 'content-length': String(body.length) });
  res.end(a.head ? undefined : body);
  return true;
}
