import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory of the command bundle this code runs from (cli/command-bundle.mjs defines it), if it does. */
declare const __ROWFLEET_COMMAND_BUNDLE__: string | undefined;

const TSX = import.meta.resolve('tsx');

/** The local runtime's own processes, by their name in the command bundle (cli/command-bundle.mjs). */
const SOURCES = {
  daemon: fileURLToPath(new URL('./daemon.ts', import.meta.url)),
  'emulator-host': fileURLToPath(new URL('./emulator-host.ts', import.meta.url)),
  'lambda-host': fileURLToPath(new URL('./lambda-host.ts', import.meta.url)),
} as const;

/**
 * How to start one of the local runtime's processes: from the command bundle when this process runs from it (no
 * TypeScript compiled at start; the bundle was built from these very sources, each entry alike), else from its
 * source through tsx (tests, `npm run bench`, anything run from the sources).
 */
export function runtimeProcess(name: keyof typeof SOURCES): { file: string; execArgv: string[] } {
  if (typeof __ROWFLEET_COMMAND_BUNDLE__ === 'string')
    return { file: join(__ROWFLEET_COMMAND_BUNDLE__, `${name}.mjs`), execArgv: [] };
  return { file: SOURCES[name], execArgv: ['--import', TSX] };
}

/**
 * V8's compiled code of the runtime's processes (functions, workers), kept between their starts; Node checks it
 * against each file's content. The directory `rowfleet` sets for itself and all it starts (cli/rowfleet.mjs), the
 * same one when the runtime is started from the sources (tests, `npm run bench`): a function's process compiled its
 * whole bundle at each start without it (~0.2 core-s each, in a 1M-record run's CPU profile of the split and the
 * finalize).
 */
export function compileCacheEnv(): { NODE_COMPILE_CACHE: string } {
  const root = fileURLToPath(new URL('..', import.meta.url));
  return {
    NODE_COMPILE_CACHE:
      process.env.NODE_COMPILE_CACHE || join(root, 'node_modules', '.cache', 'rowfleet', 'compile-cache'),
  };
}
