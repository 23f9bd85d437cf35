import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/cli.ts';

const json = (file: string) =>
  JSON.parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as Record<string, unknown>;

/**
 * How `npx rowfleet` finds the command (issue 22, start-up). npm's `npx` first asks whether the project's own
 * package.json has a `bin` of that name; when it has, npx loads the whole installed dependency tree to run it (about
 * 1.4 s of CPU here, more than the command itself). The command is the bin of the `cli/` workspace instead: `npm ci`
 * links it as node_modules/.bin/rowfleet, and npx runs that link directly, without reading the tree.
 */
describe('cli/package.json: the rowfleet command as the bin of a workspace', () => {
  const root = json('package.json');
  const cli = json('cli/package.json');
  const lock = json('package-lock.json') as { packages: Record<string, Record<string, unknown>> };

  it('gives the root package no bin (npx would load the dependency tree to find it)', () => {
    expect(root.bin).toBeUndefined();
    expect(lock.packages['']?.bin).toBeUndefined();
  });

  it('makes cli/ a workspace whose bin is the command, linked by npm ci', () => {
    expect(root.workspaces).toEqual(['cli']);
    // ES modules like the rest of the tree: the nearest package.json of cli/*.ts decides how Node reads them.
    expect(cli).toMatchObject({ private: true, type: 'module', bin: { rowfleet: 'rowfleet.mjs' } });
    const name = cli.name as string;
    expect(lock.packages[`node_modules/${name}`]).toEqual({ resolved: 'cli', link: true });
    expect(lock.packages.cli).toMatchObject({ name, bin: { rowfleet: 'rowfleet.mjs' } });
  });

  it('keeps the bin runnable by its link: executable, with a shebang', () => {
    const bin = join(REPO_ROOT, 'cli', 'rowfleet.mjs');
    accessSync(bin, constants.X_OK);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
