import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ROWFLEET = fileURLToPath(new URL('../../scripts/rowfleet.mjs', import.meta.url));

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

/** Runs `node scripts/rowfleet.mjs <args>` as a child process in the repository root. */
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

export interface RunJson {
  token: string;
  site: string;
  state: string;
  rows: { total: number; succeeded: number; failed: number; rejected: number };
  /** When the API took the job (ISO 8601). */
  receivedAt?: string;
  zip?: string;
  error?: { code: string; message: string };
}

/** The JSON summary `rowfleet run --json` prints as the last line of stdout. */
export function lastJsonLine(stdout: string): RunJson {
  const lines = stdout.trimEnd().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as RunJson;
}
