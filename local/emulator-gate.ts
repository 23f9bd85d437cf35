/**
 * The front of the embedded emulators: each of them answers only requests signed with the runtime's credentials
 * (AWS Signature Version 4, in the Authorization header or a presigned URL's query, recomputed with
 * @smithy/signature-v4, the signer the SDK itself uses) and addressed to a loopback name with the emulator's own
 * port (a page of another site that renamed itself 127.0.0.1 by DNS rebinding is refused). Everything else gets
 * 403 before the emulator sees it.
 *
 * What is checked and what is not: the signature covers the method, path, query, the signed headers and the
 * payload's hash as `x-amz-content-sha256` declares it (every SDK v3 client sends that header); the body itself
 * is not hashed again (the emulators stream it), so a request captured on the loopback interface could be replayed
 * with another body within its 15 minutes — which takes root on this machine, who can read the secret anyway.
 *
 * The emulators' own web pages (the SES mail viewer and its store, the SQS request counts) cannot be signed by a
 * browser: they take the runtime's viewer key (derived from the secret), as `?key=` (which sets a cookie for the
 * page's own requests), the `x-rowfleet-key` header or that cookie.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { sigV4Signer } from '../core/aws/sigv4.ts';
import type { AddressInfo } from 'node:net';

export interface EmulatorCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * The state directory's emulator credentials (`<state>/credentials.json`, 0600): made once, at random, by the
 * first runtime of the directory and kept, so presigned URLs and attached commands outlive a runtime restart.
 * Delete the file (runtime stopped) to change them.
 */
export function stateDirCredentials(stateDir: string): EmulatorCredentials {
  const file = join(stateDir, 'credentials.json');
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as Partial<EmulatorCredentials>;
    if (c.accessKeyId && c.secretAccessKey)
      return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
  } catch {
    // none yet (or unreadable): a new pair
  }
  const made = {
    accessKeyId: `ROWFLEETLOCAL${randomBytes(6).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  // Only the runtime that holds the state directory's lock gets here: no two write it at once.
  writeFileSync(file, JSON.stringify(made, null, 2) + '\n', { mode: 0o600 });
  return made;
}

/** The embedded SES's mail viewer, opened with the runtime's viewer key; undefined on an external endpoint. */
export function mailViewerUrl(endpoints: Record<string, string>): string | undefined {
  const c = credentialsFromEnv();
  return endpoints.ses && c ? `${endpoints.ses}/?key=${viewerKey(c)}` : undefined;
}

/** The emulator credentials this process signs with (the runtime's, once started or attached). */
export function credentialsFromEnv(): EmulatorCredentials | undefined {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}

/** How far a signed request's date may be from now (AWS allows the same). */
const MAX_SKEW_MS = 15 * 60 * 1000;
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);
const VIEWER_HEADER = 'x-rowfleet-key';

/** The key that opens the emulators' web pages (not an AWS credential): an HMAC of the secret. */
export function viewerKey(c: EmulatorCredentials): string {
  return createHmac('sha256', c.secretAccessKey).update('rowfleet local viewer').digest('hex');
}

/** Whether `host` (the Host header) names this machine's loopback interface with `port`. */
export function loopbackHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const at = host.lastIndexOf(':');
  if (at < 0) return false;
  return LOOPBACK_NAMES.has(host.slice(0, at).toLowerCase()) && host.slice(at + 1) === String(port);
}

const same = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** `20261207T032020Z` as a Date (undefined when malformed). */
function amzDate(s: string | null | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** `<key id>/<date>/<region>/<service>/aws4_request`, split. */
function scope(credential: string | undefined) {
  const [keyId, , region, service, terminator] = (credential ?? '').split('/');
  if (!keyId || !region || !service || terminator !== 'aws4_request') return undefined;
  return { keyId, region, service };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** The query as the signer reads it (repeated names as arrays), without the names in `drop`. */
function queryOf(params: URLSearchParams, drop: ReadonlySet<string>): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  for (const [k, v] of params) {
    if (drop.has(k)) continue;
    const had = q[k];
    q[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return q;
}

const signer = (c: EmulatorCredentials, region: string, service: string) =>
  sigV4Signer({
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    region,
    service,
    // S3 signs the path as sent; the other services escape it once more (as the SDK's signer does).
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });

/**
 * Why the request's SigV4 signature is not one made with `c` (undefined: it is). Checks the access key id, the
 * signature and the date (within 15 minutes for a signed header; within its expiry for a presigned URL).
 */
export async function sigV4Refusal(
  req: IncomingMessage,
  c: EmulatorCredentials,
  now = Date.now(),
): Promise<string | undefined> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';
  const auth = header(req, 'authorization');
  const presigned = url.searchParams.get('X-Amz-Signature');
  if (auth?.startsWith('AWS4-HMAC-SHA256 ')) {
    const fields = Object.fromEntries(
      auth
        .slice('AWS4-HMAC-SHA256 '.length)
        .split(',')
        .map((f) => f.trim().split('=') as [string, string]),
    );
    const s = scope(fields.Credential);
    const date = amzDate(header(req, 'x-amz-date'));
    const signedHeaders = (fields.SignedHeaders ?? '').split(';').filter(Boolean);
    if (!s || !date || !fields.Signature || !signedHeaders.includes('host')) return 'malformed signature';
    if (!same(s.keyId, c.accessKeyId)) return 'unknown access key';
    if (Math.abs(now - date.getTime()) > MAX_SKEW_MS) return 'signature expired';
    if (header(req, 'x-amz-content-sha256') === undefined)
      return 'unsigned payload (no x-amz-content-sha256)';
    const headers: Record<string, string> = {
      'x-amz-content-sha256': header(req, 'x-amz-content-sha256')!,
    };
    for (const h of signedHeaders) headers[h] = header(req, h) ?? '';
    const signed = await signer(c, s.region, s.service).sign(
      {
        method,
        protocol: 'http:',
        hostname: 'localhost',
        path: url.pathname,
        query: queryOf(url.searchParams, new Set()),
        headers,
      },
      {
        signingDate: date,
        signingRegion: s.region,
        signingService: s.service,
        signableHeaders: new Set(signedHeaders),
      },
    );
    const expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization))?.[1] ?? '';
    return same(expected, fields.Signature) ? undefined : 'signature does not match';
  }
  if (presigned !== null) {
    const q = url.searchParams;
    const s = scope(q.get('X-Amz-Credential') ?? undefined);
    const date = amzDate(q.get('X-Amz-Date'));
    const expires = Number(q.get('X-Amz-Expires'));
    const signedHeaders = (q.get('X-Amz-SignedHeaders') ?? '').split(';').filter(Boolean);
    if (!s || !date || !Number.isInteger(expires) || expires <= 0 || !signedHeaders.includes('host'))
      return 'malformed presigned URL';
    if (!same(s.keyId, c.accessKeyId)) return 'unknown access key';
    if (now < date.getTime() - MAX_SKEW_MS || now > date.getTime() + expires * 1000)
      return 'presigned URL expired';
    const headers: Record<string, string> = {};
    for (const h of signedHeaders) headers[h] = header(req, h) ?? '';
    const payload = 'x-amz-content-sha256';
    const signed = await signer(c, s.region, s.service).presign(
      {
        method,
        protocol: 'http:',
        hostname: 'localhost',
        path: url.pathname,
        query: queryOf(q, new Set(['X-Amz-Signature'])),
        headers: { ...headers, [payload]: 'UNSIGNED-PAYLOAD' },
      },
      {
        signingDate: date,
        expiresIn: expires,
        signingRegion: s.region,
        signingService: s.service,
        signableHeaders: new Set(signedHeaders),
        unsignableHeaders: new Set([payload]),
        unhoistableHeaders: new Set([payload]),
      },
    );
    return same(String(signed.query?.['X-Amz-Signature'] ?? ''), presigned)
      ? undefined
      : 'signature does not match';
  }
  return 'not signed';
}

/** Whether the request carries the viewer key (query `key`, the x-rowfleet-key header or the page's cookie). */
export function viewerKeyRefusal(
  req: IncomingMessage,
  c: EmulatorCredentials,
  port: number,
): string | undefined {
  const key = viewerKey(c);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const cookie = (header(req, 'cookie') ?? '')
    .split(';')
    .map((p) => p.trim().split('='))
    .find(([k]) => k === cookieName(port))?.[1];
  const given = url.searchParams.get('key') ?? header(req, VIEWER_HEADER) ?? cookie ?? '';
  return same(given, key) ? undefined : 'no viewer key';
}

/** The viewer's cookie, one per port (cookies are shared by every port of a host). */
const cookieName = (port: number) => `rowfleet_viewer_${port}`;

/** The cookie a page opened with `?key=` keeps for its own requests (the mail viewer fetches its store). */
export function viewerCookie(c: EmulatorCredentials, port: number): string {
  return `${cookieName(port)}=${viewerKey(c)}; HttpOnly; SameSite=Strict; Path=/`;
}

/**
 * Fetches one of the emulators' own pages (the SES store, the SQS request counts) with the viewer key of the
 * runtime this process runs in or is attached to.
 */
export function fetchEmulatorPage(url: string | URL): Promise<Response> {
  const c = credentialsFromEnv();
  return fetch(url, { headers: c ? { [VIEWER_HEADER]: viewerKey(c) } : {} });
}

/**
 * Puts `check` in front of every request `server` answers: a refusal (a reason) is answered 403 before any of the
 * server's own request listeners run; `undefined` passes the request on unchanged (its body still unread).
 */
export function guardServer(
  server: Server,
  check: (req: IncomingMessage, res: ServerResponse) => Promise<string | undefined> | string | undefined,
): void {
  const listeners = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    Promise.resolve()
      .then(() => check(req, res))
      .then(
        (refusal) => {
          if (refusal === undefined) for (const l of listeners) l.call(server, req, res);
          else refuse(req, res, refusal);
        },
        (err: unknown) => refuse(req, res, `could not check the request: ${String(err)}`),
      );
  });
}

let refused = 0;

function refuse(req: IncomingMessage, res: ServerResponse, reason: string): void {
  // In the runtime's log (the first ones, then one in a thousand: a local flood does not fill the disk).
  if (++refused <= 20 || refused % 1000 === 0) {
    const path = (req.url ?? '').split('?')[0]!.slice(0, 200);
    process.stderr.write(`emulator gate: refused ${req.method} ${path} (${refused} so far): ${reason}\n`);
  }
  res.writeHead(403, { 'content-type': 'application/json', connection: 'close' });
  res.end(
    JSON.stringify({
      __type: 'AccessDeniedException',
      message: `the embedded emulator answers only the local runtime's own signed requests: ${reason}`,
    }),
  );
}

/** The port a started server listens on (-1 before it listens). */
export const portOf = (server: { address(): AddressInfo | string | null }) =>
  (server.address() as AddressInfo | null)?.port ?? -1;
