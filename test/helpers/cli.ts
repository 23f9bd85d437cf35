import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { RunSummary } from '../../cli/run-job.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ROWFLEET = fileURLToPath(new URL('../../cli/rowfleet.mjs', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of a CLI run: this process's, without anything that points at other AWS resources. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
  for (const k of Object.keys(env)) {
    if (
      k.startsWith('AWS_ENDPOINT_URL') ||
      ['STAGE', 'BUCKET_NAME', 'TABLE_NAME', 'FINALIZE_QUEUE_URL', 'DLQ_ARN'].includes(k)
    )
      delete env[k];
  }
  return env;
}

/** Runs `node cli/rowfleet.mjs <args>` as a child process in the repository root. */
export function rowfleet(args: string[], timeoutMs = 90_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ROWFLEET, ...args], {
      cwd: REPO_ROOT,
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rowfleet ${args.join(' ')} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What `rowfleet run --json` prints: the command's summary without its timing. */
export type RunJson = Omit<RunSummary, 'seconds'>;

/** The JSON summary `rowfleet run --json` prints as the last line of stdout. */
export function lastJsonLine(stdout: string): RunJson {
  const lines = stdout.trimEnd().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as RunJson;
}

/** A `rowfleet` in the background: its child, its output as it comes, and its exit code once it closes. */
export interface Background {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<number | null>;
}

/**
 * Starts `rowfleet <args>` in the background: call once at module level; every child still running after the
 * file's tests is killed (SIGKILL), so a failed test leaves no runtime behind.
 */
export function rowfleetStarter(): (args: string[]) => Background {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return (args) => {
    const child = spawn(process.execPath, [ROWFLEET, ...args], {
      cwd: REPO_ROOT,
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const out = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    return { child, out, exited };
  };
}

/** What `rowfleet run` is told beyond the file: each option present only where a test names it. */
export interface RunArgs {
  readonly site?: string;
  readonly processor?: string;
  readonly workers?: number;
  readonly concurrency?: number;
  readonly delayMs?: number;
  readonly stateDir?: string;
  readonly out?: string;
}

/** `run <file> --site S [--processor P] [--workers N] [--concurrency N] [--simulate-delay-ms N] --json [--state-dir D] [--out O]`. */
export function runArgs(file: string, o: RunArgs): string[] {
  const opt = (flag: string, v: string | number | undefined) => (v === undefined ? [] : [flag, String(v)]);
  return [
    'run',
    file,
    '--site',
    o.site ?? 'sakai',
    ...opt('--processor', o.processor),
    ...opt('--workers', o.workers),
    ...opt('--concurrency', o.concurrency),
    ...opt('--simulate-delay-ms', o.delayMs),
    '--json',
    ...opt('--state-dir', o.stateDir),
    ...opt('--out', o.out),
  ];
}
