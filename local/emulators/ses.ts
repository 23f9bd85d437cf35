/**
 * The embedded SES v2 (aws-ses-v2-local): its mails kept in the state directory, its web view opened with the
 * viewer key, AWS's API signed with the runtime's credentials.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import sesModule from 'aws-ses-v2-local';
import sesStore, { type Email } from 'aws-ses-v2-local/dist/store.js';
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
const sesLocal: SesServer =
  (sesModule as unknown as { default?: SesServer }).default ?? (sesModule as unknown as SesServer);

/** A mail the embedded SES took, as kept in the state dir: the emulator's record and when it arrived (ms). */
export type StoredMail = Email & { readonly atMs?: number };

/**
 * Keeps the embedded SES's mails in `<dir>/ses-mails.ndjson` (one JSON line per mail, appended before the
 * emulator answers, so a mail it acknowledged survives a kill -9) and loads them back on start, so
 * `rowfleet mail list` sees the mails of earlier commands. Returns the close.
 */
function persistSesMails(dir: string): () => Promise<void> {
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

/** Starts the embedded SES on a free loopback port, its mails kept in `stateDir` when given. */
export async function startSes(
  stateDir: string | undefined,
  credentials: EmulatorCredentials,
): Promise<{ readonly server: Server; stop(): Promise<void> }> {
  const closeMails = stateDir ? persistSesMails(stateDir) : undefined;
  const ses: Server = await sesLocal({ host: '127.0.0.1', port: 0 });
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
      await closeMails?.();
    },
  };
}
