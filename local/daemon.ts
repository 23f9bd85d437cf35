/**
 * The background local runtime of a state directory: started by the first command that needs one
 * (local/attach.ts), used by every command of that state directory while it runs, and stopped cleanly as soon as
 * no command is attached any more (or when no command attached within a minute of its start). Its output goes to
 * `<state>/logs/runtime.log`.
 *
 *   node --import tsx local/daemon.ts <stateDir> [<endpoint>]
 */
import { resolve } from 'node:path';
import { errorMessage } from '../core/shared/errors.ts';
import type { LocalRuntime as Runtime } from './runtime.ts';
import { startEmulatorHost } from './emulator-process.ts';
import { acquireStateDir, privateStateDir } from './ownership.ts';

// Everything the runtime and its processes (emulators, workers) create is this user's only: files 0600,
// directories 0700 (the emulators' data, logs, the owner record).
process.umask(0o077);
const [stateDir, endpoint] = process.argv.slice(2);
if (!stateDir) throw new Error('usage: daemon.ts <stateDir> [<endpoint>]');

const runtime: { rt?: Runtime } = {};
let stopping: Promise<void> | undefined;
/**
 * How long a clean stop may take before the runtime ends its processes as a kill -9 would (its jobs resume at the
 * next start): a stop never keeps the state directory from the next command for long.
 */
const STOP_LIMIT_MS = 30_000;
const log = (line: string) => process.stderr.write(`${new Date().toISOString()} local runtime: ${line}\n`);
const stop = (why: string) => {
  stopping ??= (async () => {
    log(`stopping (${why})`);
    let step = 'starting';
    const clean = (runtime.rt?.stop((s) => (step = s)) ?? Promise.resolve()).then(() => true);
    const late = new Promise<false>((r) => setTimeout(() => r(false), STOP_LIMIT_MS).unref());
    if (await Promise.race([clean, late])) {
      log('stopped');
      process.exit(0);
    }
    log(
      `not stopped within ${STOP_LIMIT_MS / 1000} s (at: ${step}); ending its processes (its jobs resume at the next start)`,
    );
    runtime.rt?.kill();
    process.exit(1);
  })();
  return stopping;
};

const onLost = (err: Error) => {
  // Another process took the state directory: this one must not write to it any more.
  process.stderr.write(`local runtime: state directory lost: ${errorMessage(err)}\n`);
  process.exit(1);
};
// The emulators start first, under the state directory's lock, and load while the rest of the runtime does (each
// took about as long as the other, one after the other, before a command could attach).
privateStateDir(resolve(stateDir));
const heldStateDir = await acquireStateDir(resolve(stateDir), { waitMs: 30_000, onLost });
const emulators = endpoint ? undefined : startEmulatorHost(resolve(stateDir), 'local');
// Awaited by the runtime's start; a failure meanwhile is its to report.
emulators?.catch(() => undefined);
const { LocalRuntime } = await import('./runtime.ts');
let everAttached = false;
const rt = (runtime.rt = await LocalRuntime.start({
  stateDir,
  ...(endpoint ? { endpoint } : {}),
  heldStateDir,
  ...(emulators ? { emulators } : {}),
  onClients: (n) => {
    // In the log, so a runtime that stays up (or stops) says who was attached.
    process.stderr.write(`${new Date().toISOString()} local runtime: ${n} command(s) attached\n`);
    if (n > 0) everAttached = true;
    else void stop('no command attached');
  },
  onLost,
}));
process.stderr.write(
  `${new Date().toISOString()} local runtime ${rt.instance} up: API ${rt.apiUrl}, control ${rt.control.url}\n`,
);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void stop(signal));
setTimeout(() => {
  if (!everAttached && rt.control.attached === 0) void stop('no command attached after start');
}, 60_000).unref();
