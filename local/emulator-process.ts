import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { localResourceNames } from '../config/names.ts';
import { stateDirCredentials, type EmulatorCredentials } from './emulator-gate.ts';
import { runtimeProcess } from './entries.ts';
import type { EmulatorOptions } from './emulators/index.ts';
import { ENV } from '../config/env.ts';

/** The embedded emulators' process, the endpoints it answers on and the only credentials it takes. */
export interface EmulatorHost {
  readonly child: ChildProcess;
  readonly endpoints: Record<string, string>;
  readonly credentials: EmulatorCredentials;
}

/**
 * Starts the embedded emulators of a state directory in a child process, each on a free port, their state in
 * `<state>/emulators`; the caller holds the state directory's lock. Light to load on purpose: the background
 * runtime (local/daemon.ts) starts them before it loads the rest of the runtime, so both load at once.
 */
export async function startEmulatorHost(stateDir: string, stage: string): Promise<EmulatorHost> {
  const names = localResourceNames(stage);
  const credentials = stateDirCredentials(stateDir);
  const options: EmulatorOptions = {
    stateDir: join(stateDir, 'emulators'),
    // The command that started this runtime passes the stage's region (local/attach.ts): the config (zod) then
    // loads while the emulators do, not before.
    region: process.env.AWS_REGION ?? (await import('../config/index.ts')).getStage(stage).region,
    ...credentials,
    notify: { bucket: names.bucket, prefix: 'uploads/', queueName: names.uploadEventsQueue },
  };
  const host = runtimeProcess('emulator-host');
  const child = fork(host.file, [], {
    execArgv: host.execArgv,
    env: { ...process.env, [ENV.emulatorOptions]: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Its own process group: a terminal's Ctrl-C reaches only the CLI, which stops the emulators in order (state
    // saved). If the CLI dies, the host still stops on its own when the IPC channel closes.
    detached: true,
  });
  const endpoints = await new Promise<Record<string, string>>((res, rej) => {
    child.once('message', (m: { type: string; endpoints: Record<string, string> }) => res(m.endpoints));
    child.once('exit', (code) => rej(new Error(`embedded emulators exited during start (code ${code})`)));
  });
  child.removeAllListeners('exit');
  return { child, endpoints, credentials };
}
