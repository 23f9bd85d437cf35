import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { consoleAnswer, type ConsoleFile } from '../../core/intake/console.ts';
import { requireEnv } from '../../core/shared/env.ts';
import { lambda } from '../shared/middleware.ts';
import { ENV } from '../../config/env.ts';

/**
 * Console Lambda: GET /console and /console/{proxy+} of the REST API — the web console's three files, built for the
 * stage at synth time into the function's bundle (lib/rowfleet-stack.ts), with the security headers of
 * core/intake/console.ts. Same origin as the API, so the console's API calls need no CORS; its Content-Security-
 * Policy allows connections to the API and to the bucket (UPLOAD_ORIGIN), where presigned uploads go.
 */
export function createConsoleHandler(dir: string, uploadOrigin: string) {
  const files = new Map<ConsoleFile, string>();
  const read = (f: ConsoleFile) => {
    let body = files.get(f);
    if (body === undefined) files.set(f, (body = readFileSync(join(dir, f), 'utf8')));
    return body;
  };
  return lambda(async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const a = consoleAnswer(event.httpMethod, event.path, [uploadOrigin]);
    if (!a)
      return { statusCode: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Not found' };
    if (a.status !== 200 || !a.file) return { statusCode: a.status, headers: a.headers, body: '' };
    // Text (HTML, JavaScript, CSS): none of them is one of the API's binary media types.
    return { statusCode: 200, headers: a.headers, body: a.head ? '' : read(a.file) };
  });
}

/** The console built into the bundle: `console/` next to the handler's module. */
const BUNDLED = join(dirname(fileURLToPath(import.meta.url)), 'console');

let cached: ReturnType<typeof createConsoleHandler> | undefined;
export const handler = (event: APIGatewayProxyEvent, context: Context) =>
  (cached ??= createConsoleHandler(
    process.env[ENV.consoleDir] ?? BUNDLED,
    requireEnv(ENV.consoleUploadOrigin),
  ))(event, context);
