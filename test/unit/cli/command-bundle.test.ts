import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildBundle,
  bundleDir,
  commandBundle,
  COMMAND_ENTRIES,
  currentBundle,
  SELF_CONTAINED,
} from '../../../cli/command-bundle.mjs';
import { httpEsImportsOf } from '../../helpers/es-imports.ts';

const dir = mkdtempSync(join(tmpdir(), 'rowfleet-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A project of two sources: main.ts prints what value.ts exports, and value.ts's own import.meta.url. */
function project(name: string): { root: string; outDir: string; value: string } {
  const root = join(dir, name);
  execFileSync('mkdir', ['-p', root]);
  writeFileSync(
    join(root, 'main.ts'),
    "import { value, where } from './value.ts';\nconsole.log(value, where);\n",
  );
  const value = join(root, 'value.ts');
  writeFileSync(value, "export const value: string = 'one';\nexport const where = import.meta.url;\n");
  return { root, outDir: join(root, 'out'), value };
}

const run = (file: string) => execFileSync(process.execPath, [file], { encoding: 'utf8' }).trim();

describe('command bundle (cli/command-bundle.mjs)', () => {
  it('never runs a stale bundle: a source changed with its size and modification time kept is rebuilt', async () => {
    // Prepare
    const p = project('stale');
    const o = { root: p.root, entries: { main: 'main.ts' }, outDir: p.outDir };
    const before = run((await commandBundle(o))!.main!);
    const { mtime, size } = statSync(p.value);

    // Act
    writeFileSync(p.value, readFileSync(p.value, 'utf8').replace("'one'", "'two'"));
    utimesSync(p.value, mtime, mtime);
    const stale = currentBundle(o);
    const second = await commandBundle(o);

    // Assess
    expect(statSync(p.value).size).toBe(size);
    expect(before).toMatch(/^one /);
    expect(stale).toBeUndefined();
    expect(run(second!.main!)).toMatch(/^two /);
  });

  it('is taken as it is while nothing changed, and keeps each source its own import.meta.url', async () => {
    // Prepare
    const p = project('current');
    const o = { root: p.root, entries: { main: 'main.ts' }, outDir: p.outDir };

    // Act
    const built = await buildBundle(o);
    const current = currentBundle(o);

    // Assess
    expect(current).toEqual(built);
    expect(run(built.main!)).toBe(`one ${pathToFileURL(p.value).href}`);
  });

  it("is not taken for another checkout's: the repository's place is part of what it was built from", async () => {
    // Prepare
    const a = project('place-a');
    const b = project('place-b');
    await buildBundle({ root: a.root, entries: { main: 'main.ts' }, outDir: a.outDir });

    // Act
    const elsewhere = currentBundle({ root: b.root, entries: { main: 'main.ts' }, outDir: a.outDir });

    // Assess
    expect(elsewhere).toBeUndefined();
  });

  it("is built from every source of the command's processes: a change to any of them is seen", async () => {
    // Prepare
    const expected = [
      ...Object.values(COMMAND_ENTRIES),
      'local/runtime.ts',
      'local/emulators/index.ts',
      'core/intake/operations.ts',
      'core/split/split.ts',
      'config/index.ts',
      'tsconfig.json',
    ];

    // Act
    const built = await commandBundle();
    const manifest = JSON.parse(readFileSync(join(bundleDir(), 'manifest.json'), 'utf8')) as {
      inputs: Record<string, string>;
    };

    // Assess
    expect(built).toBeDefined();
    expect(Object.keys(manifest.inputs)).toEqual(expect.arrayContaining(expected));
  });

  it("takes node:http without its ES module facade in every file of the command's processes", async () => {
    // Act: the entries and every chunk they import, statically or lazily (older builds' chunks stay a while)
    const built = (await commandBundle())!;
    const files = new Set(Object.keys(COMMAND_ENTRIES).map((n) => built[n]!));
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/["'](\.\.?\/[^"']+\.mjs)["']/g)) {
        const chunk = join(dirname(f), m[1]!);
        if (chunk.startsWith(join(bundleDir(), 'chunks')) && existsSync(chunk)) files.add(chunk);
      }
    }

    // Assess: the facade would load undici at the start of the command and of the runtime
    expect(files.size).toBeGreaterThan(Object.keys(COMMAND_ENTRIES).length);
    for (const f of files) expect(httpEsImportsOf(readFileSync(f, 'utf8')), f).toEqual([]);
  });

  it('builds the runtime with its packages in it (each keeping its own import.meta.url); the rest imports them', async () => {
    // Prepare: a project whose two entries use one package, `dep`, which names its own file; `own` is self-contained
    const p = project('self-contained');
    const dep = join(p.root, 'node_modules', 'dep');
    execFileSync('mkdir', ['-p', dep]);
    writeFileSync(
      join(dep, 'package.json'),
      JSON.stringify({ name: 'dep', type: 'module', main: 'index.js' }),
    );
    writeFileSync(join(dep, 'index.js'), 'export const depWhere = import.meta.url;\n');
    writeFileSync(join(p.root, 'node_modules', '.package-lock.json'), '{"v":1}');
    writeFileSync(join(p.root, 'uses.ts'), "import { depWhere } from 'dep';\nconsole.log(depWhere);\n");
    const o = {
      root: p.root,
      entries: { shared: 'uses.ts', own: 'uses.ts' },
      outDir: p.outDir,
      selfContained: ['own'],
    };

    // Act
    const built = await buildBundle(o);
    const current = currentBundle(o);
    writeFileSync(join(p.root, 'node_modules', '.package-lock.json'), '{"v":2}');
    const afterInstall = currentBundle(o);

    // Assess: the daemon and the lambda host are the self-contained processes; both entries see dep's own file; an install makes the
    // bundle stale
    const depUrl = pathToFileURL(join(dep, 'index.js')).href;
    expect(SELF_CONTAINED).toEqual(['daemon', 'lambda-host']);
    expect(readFileSync(built.shared!, 'utf8')).toMatch(/from "dep"/);
    expect(readFileSync(built.own!, 'utf8')).not.toMatch(/from "dep"/);
    expect(run(built.own!)).toBe(depUrl);
    expect(run(built.shared!)).toBe(depUrl);
    expect(current).toEqual(built);
    expect(afterInstall).toBeUndefined();
  });
});
