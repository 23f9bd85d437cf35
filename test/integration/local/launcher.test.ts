/**
 * The local workers run a bundle with its packages in it, as the container image does (issue 22: a worker's start
 * is part of every job's time): nothing of node_modules is resolved when a worker starts, and no source map is parsed
 * unless asked for.
 */
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { describe, expect, it } from 'vitest';
import { prepareWorkers, workerBundle } from '../../../local/launcher.ts';

describe('Local launcher: the worker bundle (local/launcher.ts)', () => {
  it('imports nothing but Node built-ins at its start, its source map beside it', async () => {
    const bundle = await workerBundle();
    const code = readFileSync(bundle, 'utf8');
    const imported = [...code.matchAll(/^import\s[^'"]*?from\s*["']([^"']+)["']/gm)].map((m) => m[1]!);
    expect(imported.length).toBeGreaterThan(0);
    expect(imported.filter((s) => !isBuiltin(s))).toEqual([]);
    // node:http without its ES module facade, as the image takes it (config/node-http.cjs): no undici at start.
    expect(imported.filter((s) => s === 'http' || s === 'node:http')).toEqual([]);
    expect(code).not.toContain('sourceMappingURL=data:');
    expect(code.trimEnd().endsWith(`sourceMappingURL=${bundle.split('/').pop()}.map`)).toBe(true);
    expect(existsSync(`${bundle}.map`)).toBe(true);
  }, 120_000);

  it('is built again by prepareWorkers() when it is older than its sources, and a launch at the same time gets it', async () => {
    // Prepare: a bundle older than every source, as after an update.
    const bundle = await workerBundle();
    utimesSync(bundle, new Date(0), new Date(0));

    // Act: a benchmark's preparation and a launch at the same time.
    const [, again] = await Promise.all([prepareWorkers(), workerBundle()]);

    // Assess
    expect(again).toBe(bundle);
    expect(statSync(bundle).mtimeMs).toBeGreaterThan(Date.now() - 120_000);
    expect(readFileSync(bundle, 'utf8')).toContain('sourceMappingURL=');
  }, 120_000);
});
