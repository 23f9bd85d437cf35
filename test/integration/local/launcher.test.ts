/**
 * The local workers run a bundle with its packages in it, as the container image does (issue 22: a worker's start
 * is part of every job's time): nothing of node_modules is resolved when a worker starts, and no source map is parsed
 * unless asked for.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { describe, expect, it } from 'vitest';
import { workerBundle } from '../../../local/launcher.ts';

describe('Local launcher: the worker bundle (local/launcher.ts)', () => {
  it('imports nothing but Node built-ins at its start, its source map beside it', async () => {
    const bundle = await workerBundle();
    const code = readFileSync(bundle, 'utf8');
    const imported = [...code.matchAll(/^import\s[^'"]*?from\s*["']([^"']+)["']/gm)].map((m) => m[1]!);
    expect(imported.length).toBeGreaterThan(0);
    expect(imported.filter((s) => !isBuiltin(s))).toEqual([]);
    expect(code).not.toContain('sourceMappingURL=data:');
    expect(code.trimEnd().endsWith(`sourceMappingURL=${bundle.split('/').pop()}.map`)).toBe(true);
    expect(existsSync(`${bundle}.map`)).toBe(true);
  }, 120_000);
});
