/**
 * The embedded SES v2 (aws-ses-v2-local): its mails kept in the state directory, its web view opened with the
 * viewer key, AWS's API signed with the runtime's credentials.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Email } from 'aws-ses-v2-local/dist/store.js';
import {
  guardServer,
  loopbackHost,
  portOf,
  sigV4Refusal,
  viewerCookie,
  viewerKeyRefusal,
  type EmulatorCredentials,
} from '../emulator-gate.ts';

// aws-ses-v2-local is CommonJS with a default export.
type SesServer = (config?: { host?: string; port?: number }) => Promise<Server>;
type SesStore = typeof import('aws-ses-v2-local/dist/store.js');
const requireSes = createRequire(import.meta.url);

/**
 * aws-ses-v2-local and its store, loaded when the first request comes (express, nodemailer: ~0.3 s of CPU, a third
 * of the emulators' start, which every command that starts the runtime waited for; most jobs send no mail).
 */
async function loadSes(): Promise<{ sesLocal: SesServer; sesStore: SesStore }> {
  // Required, not imported: the store is the very exports object the emulator's handlers call (persistSesMails
  // replaces its saveEmail), whatever loader or bundle runs this module.
  const sesModule = requireSes('aws-ses-v2-local') as { default: SesServer };
  return { sesLocal: sesModule.default, sesStore: requireSes('aws-ses-v2-local/dist/store.js') as SesStore };
}

/** A mail the embedded SES took, as kept in the state dir: the emulator's record and when it arrived (ms). */
export type StoredMail = Email & { readonly atMs?: number };

/**
 * Keeps the embedded SES's mails in `<dir>/ses-mails.ndjson` (one JSON line per mail, appended before the
 * emulator answers, so a mail it acknowledged survives a kill -9) and loads them back on start, so
 * `rowfleet mail list` sees the mails of earlier commands. Returns the close.
 */
function persistSesMails(sesStore: SesStore, dir: string): () => Promise<void> {
  const file = join(dir, 'ses-mails.ndjson');
  mkdirSync(dir, { recursive: true });
  const store = sesStore.getStoreReadonly();
  if (existsSync(file) && store.emails.length === 0) {
    for (const line of readFileSync(file, 'utf8').split('\n'))
      if (line) store.emails.push(JSON.parse(line) as Email);
  }
  // The emulator's handlers call saveEmail through its (CommonJS) module's exports: replaced there, it sees
  // every mail.
  const exports = sesStore as { saveEmail: (email: Email) => void };
  const save = exports.saveEmail;
  exports.saveEmail = (email: Email) => {
    Object.assign(email, { atMs: Date.now() });
    save(email);
    appendFileSync(file, JSON.stringify(email) + '\n');
  };
  return async () => {
    exports.saveEmail = save;
  };
}

/** The embedded SES's own web view and its JSON API (not AWS's): opened with the viewer key. */
const SES_WEB = new Set(['/', '/store', '/get-emlContent', '/clear-store', '/health-check']);

/**
 * Starts the embedded SES on a free loopback port, its mails kept in `stateDir` when given. The port answers at once;
 * the emulator itself is loaded when the first request comes, which waits for it (loadSes).
 */
export async function startSes(
  stateDir: string | undefined,
  credentials: EmulatorCredentials,
): Promise<{ readonly server: Server; stop(): Promise<void> }> {
  let loaded: Promise<{ listeners: RequestListener[]; closeMails?: () => Promise<void> }> | undefined;
  const load = () =>
    (loaded ??= loadSes().then(async ({ sesLocal, sesStore }) => {
      const closeMails = stateDir ? persistSesMails(sesStore, stateDir) : undefined;
      // The emulator makes its express app and listens; its app serves this server's requests, its own port
      // closes at once (nothing knows it).
      const own: Server = await sesLocal({ host: '127.0.0.1', port: 0 });
      const listeners = own.listeners('request') as RequestListener[];
      await new Promise<void>((r) => own.close(() => r()));
      return { listeners, ...(closeMails ? { closeMails } : {}) };
    }));
  const ses = createServer((req, res) => {
    load().then(
      ({ listeners }) => {
        for (const l of listeners) l.call(ses, req, res);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`the embedded SES could not load: ${String(err)}`);
      },
    );
  });
  await new Promise<void>((r) => ses.listen(0, '127.0.0.1', () => r()));
  // Node closes an idle keep-alive connection after 5 s: a client sending on it just then gets a reset, and a
  // bulk mail with no answer is IN_DOUBT. Idle connections live a minute here, as on AWS's load balancers.
  ses.keepAliveTimeout = 60_000;
  ses.headersTimeout = 61_000;
  guardServer(ses, (req, res) => {
    const port = portOf(ses);
    if (!loopbackHost(req.headers.host, port)) return 'Host is not this emulator on loopback';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!SES_WEB.has(path)) return sigV4Refusal(req, credentials);
    const refusal = viewerKeyRefusal(req, credentials, port);
    // The viewer opened with ?key= keeps it in a cookie for its own requests (its store, a download).
    if (!refusal && path === '/') res.setHeader('set-cookie', viewerCookie(credentials, port));
    return refusal;
  });
  return {
    server: ses,
    async stop() {
      await new Promise<void>((r) => ses.close(() => r()));
      // A load under way finishes first, so the mails' file is let go after the last one was written.
      if (loaded) await (await loaded.catch(() => undefined))?.closeMails?.();
    },
  };
}
