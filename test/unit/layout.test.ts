import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.ts';

/**
 * The layout of docs/DESIGN.md, enforced: which top-level folder may import which, and inside core/ the flow's layers
 * — a folder imports only from its own layer or below, never back up.
 */
/**
 * The pipeline's stages: siblings that never import each other, not even a type — they talk through the formats
 * of core/messages/ (the chunk message, the part, the zip entries, the finalize request) and the job record.
 */
const STAGES: readonly string[] = ['split', 'work', 'finalize', 'reaper'];

const TOP_LEVEL: Record<string, readonly string[]> = {
  config: ['config'],
  lib: ['lib', 'config'],
  bin: ['bin', 'lib', 'config'],
  core: ['core', 'config'],
  lambdas: ['lambdas', 'core', 'config'],
  'fargate-worker': ['fargate-worker', 'core', 'config'],
  // fargate-worker: the local launcher builds users' processors with the image's own build step.
  local: ['local', 'lambdas', 'fargate-worker', 'core', 'config', 'web'],
  web: ['web', 'core', 'config'],
  // Users' row processors: the processor contract in core, their settings in config. (core/processors loads
  // them by name with a dynamic import — the one plugin point, not a dependency of core on them.)
  processors: ['processors', 'core', 'config'],
  // The shipped `rowfleet` command: it drives the local runtime or a deployed API. lib: `doctor` checks the paths a
  // deploy builds from (lib/paths.ts); web: `loadtest` sends the console's load-test records (web/src/sample-data.ts).
  // Nothing imports cli/ but the benchmarks and the tests (scripts/, test/: not checked).
  cli: ['cli', 'core', 'config', 'local', 'lib', 'web'],
};

/** core/'s layers, bottom up: a file may import its own folder, its layer's other folders, or anything lower. */
const CORE_LAYERS: readonly (readonly string[])[] = [
  ['shared'],
  ['aws'],
  ['source', 'messages', 'jobs', 'stop'],
  ['usage', 'processors', 'effects', 'budget', 'chunking'],
  STAGES,
  ['intake'],
  ['.'], // core/deps.ts: the composition root
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(name) ? [p] : [];
  });
}

/** The files a file imports by relative path; `runtimeOnly` leaves out `import type` (no dependency at run time). */
function relativeImports(file: string, runtimeOnly = false): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(import\s+type\s[^;]*?from|from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)]
    .filter((m) => !(runtimeOnly && /^import\s+type\s/.test(m[1]!)))
    .map((m) => resolve(dirname(file), m[2]!));
}

const top = (abs: string) => relative(REPO_ROOT, abs).split('/')[0]!;
const coreFolder = (abs: string) => {
  const parts = relative(join(REPO_ROOT, 'core'), abs).split('/');
  return parts.length === 1 ? '.' : parts[0]!;
};
const layerOf = (folder: string) => CORE_LAYERS.findIndex((l) => l.includes(folder));

describe('Layout', () => {
  it('keeps every top-level folder to the imports docs/DESIGN.md allows', () => {
    const wrong: string[] = [];
    for (const [folder, allowed] of Object.entries(TOP_LEVEL)) {
      for (const file of files(join(REPO_ROOT, folder))) {
        for (const target of relativeImports(file)) {
          // A package's own files (the local runtime patches fauxqs's stores) are not one of our folders.
          if (!allowed.includes(top(target)) && top(target) !== 'node_modules')
            wrong.push(`${relative(REPO_ROOT, file)} → ${relative(REPO_ROOT, target)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('lays core/ out as the flow: no folder depends at run time on one above its layer', () => {
    // Type-only imports are left out: every step takes the PipelineDeps of the composition root (core/deps.ts).
    const wrong: string[] = [];
    for (const file of files(join(REPO_ROOT, 'core'))) {
      const from = coreFolder(file);
      expect(layerOf(from), `core/${from} has no layer in this test`).toBeGreaterThanOrEqual(0);
      for (const target of relativeImports(file, true)) {
        if (top(target) !== 'core') continue;
        const to = coreFolder(target);
        if (layerOf(to) > layerOf(from))
          wrong.push(`${relative(REPO_ROOT, file)} → ${relative(REPO_ROOT, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps the stages siblings: no stage imports another, type-only imports included', () => {
    const wrong: string[] = [];
    for (const file of files(join(REPO_ROOT, 'core'))) {
      const from = coreFolder(file);
      if (!STAGES.includes(from)) continue;
      for (const target of relativeImports(file)) {
        const to = top(target) === 'core' ? coreFolder(target) : undefined;
        if (to !== undefined && to !== from && STAGES.includes(to))
          wrong.push(`${relative(REPO_ROOT, file)} → ${relative(REPO_ROOT, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
