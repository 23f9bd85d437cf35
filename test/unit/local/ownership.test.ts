import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalTaskLauncher } from '../../../local/launcher.ts';
import { ownerAlive, processStart, sameProcess, type RuntimeOwner } from '../../../local/ownership.ts';

const dir = mkdtempSync(join(tmpdir(), 'rowfleet-ownership-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const owner = (pid: number, start: string): RuntimeOwner => ({
  pid,
  processStart: start,
  instance: 'i',
  stage: 'local',
  stateDir: dir,
  apiUrl: '',
  controlUrl: '',
  secret: '',
  endpoints: {},
  env: {},
  startedAt: '',
});

describe('Function: ownerAlive', () => {
  it('knows the owner by its pid and its start time: a pid reused by another process is not the owner', () => {
    // Prepare
    const mine = processStart(process.pid);

    // Act, Assess
    expect(mine).not.toBe('');
    expect(ownerAlive(owner(process.pid, mine))).toBe(true);
    expect(ownerAlive(owner(process.pid, `${mine}0`))).toBe(false);
    expect(sameProcess(2 ** 22 + 12345, mine)).toBe(false);
  });
});

describe('Class: LocalTaskLauncher', () => {
  it('never signals a process its pid file names unless it runs the worker bundle (a pid reused since)', async () => {
    // Prepare: a pid file left by a crashed runtime that names an unrelated live process
    const stranger = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const tasks = join(dir, 'tasks', 'job-token');
    mkdirSync(tasks, { recursive: true });
    writeFileSync(join(tasks, String(stranger.pid)), JSON.stringify({ site: 'sakai', instance: 'dead' }));
    const launcher = new LocalTaskLauncher(dir, 'this-instance');

    // Act
    const listed = await launcher.list();
    const stopped = await launcher.stopOthers();
    await new Promise((r) => setTimeout(r, 200));

    // Assess: not taken for a worker, not signalled, its stale pid file removed
    expect(listed).toEqual([]);
    expect(stopped).toBe(0);
    expect(stranger.exitCode).toBeNull();
    expect(stranger.signalCode).toBeNull();
    expect(existsSync(join(tasks, String(stranger.pid)))).toBe(false);
    stranger.kill('SIGKILL');
  });
});
