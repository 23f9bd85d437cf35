import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Inspected } from '../config/processors.ts';
import { PROJECT_ROOT, projectPath } from './paths.ts';
import { ENV } from '../config/env.ts';

/** Synth-time manifests, cached on disk by the processors' contents, the stage and the sources they are read with. */
const CACHE = projectPath('node_modules/.cache/rowfleet/manifests');

/** The newest modification time under a folder. */
function newest(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
    const p = join(dir, e.name);
    return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }, 0);
}

function cacheKey(dir: string, stage: string): string {
  const h = createHash('sha256').update(`${dir}\0${stage}\0`);
  for (const f of existsSync(dir) ? readdirSync(dir).sort() : []) {
    const path = join(dir, f);
    if (f.endsWith('.ts') && statSync(path).isFile()) h.update(`${f}\0`).update(readFileSync(path));
  }
  // The sources an inspection reads besides the file (the processor's shape, the stage's configuration).
  for (const d of ['config', 'core']) h.update(String(newest(projectPath(d))));
  return h.digest('hex').slice(0, 32);
}

/**
 * The manifests of users' processors (processors/*.ts) for a stage, each file inspected in a process of its own
 * (core/processors/manifests.ts). A broken file fails the synth, naming the file and its error: a deployment
 * never ships a processor that does not load. The upload function gets them at build time (an esbuild `define`),
 * so the API on AWS never imports a user's module either.
 */
export function processorManifests(stage: string): Record<string, Inspected> {
  const dir = process.env[ENV.processorsDir] || projectPath('processors');
  const cached = join(CACHE, `${cacheKey(dir, stage)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as Record<string, Inspected>;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', projectPath('core/processors/manifests.ts'), stage],
    {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, [ENV.processorsDir]: dir, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    },
  );
  if (r.status !== 0)
    throw new Error(`reading the processors' manifests failed (${r.status ?? r.signal}): ${r.stderr}`);
  const manifests = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, Inspected>;
  const broken = Object.values(manifests).filter((m) => !m.ok);
  if (broken.length > 0)
    throw new Error(
      `Broken processor file(s), fix or remove them before deploying:\n` +
        broken.map((b) => `  ${b.file}: ${b.ok ? '' : b.error}`).join('\n'),
    );
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(`${cached}.${process.pid}.tmp`, JSON.stringify(manifests));
  renameSync(`${cached}.${process.pid}.tmp`, cached);
  return manifests;
}
