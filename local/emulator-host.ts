/**
 * Child-process entry that runs the embedded emulators, so their work (HTTP, storage) runs on its own
 * core, beside the handlers and the workers. Talks to its parent over IPC.
 */
import { startEmulators, type EmulatorOptions } from './emulators/index.ts';
import { ENV } from '../config/env.ts';

// The emulators' data (objects, queues, tables, mails) is this user's only: files 0600, directories 0700.
process.umask(0o077);
const options = JSON.parse(process.env[ENV.emulatorOptions] ?? '{}') as EmulatorOptions;
const emulators = await startEmulators(options);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await emulators.stop();
  process.send?.({ type: 'stopped' });
  process.exit(0);
};
process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());
// A runtime replacing a killed one may ask this host (left behind) to go: it saves first.
process.on('SIGTERM', () => void stop());
process.send?.({ type: 'ready', endpoints: emulators.endpoints });
