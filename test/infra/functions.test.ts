import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ENTRIES, type FunctionName } from '../../lib/rowfleet-stack.ts';
import { projectPath } from '../../lib/paths.ts';
import { bundleDir, synthStage, type Synthesized } from '../helpers/synth.ts';

const names = Object.keys(FUNCTION_ENTRIES) as FunctionName[];

describe('Stack: Rowfleet-dev functions', () => {
  let s: Synthesized;

  beforeAll(() => {
    // Prepare, Act: this file bundles the code (local esbuild, no Docker), as `cdk synth` does
    s = synthStage('dev', { bundle: true });
  });
  afterAll(() => s.cleanup());

  it.each(names)('%s: the entry file exists and exports `handler`', async (name) => {
    // Prepare
    const entry = projectPath(FUNCTION_ENTRIES[name]);

    // Act
    const mod = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;

    // Assess
    expect(existsSync(entry)).toBe(true);
    expect(s.stack.functions[name].entryPath).toBe(entry);
    expect(typeof mod.handler).toBe('function');
  });

  it.each(names)('%s: the template calls index.handler of an ESM bundle with a source map', (name) => {
    // Act
    const dir = bundleDir(s, name);
    const fn = s.stack.functions[name];
    const props =
      s.template.toJSON().Resources[s.stack.getLogicalId(fn.node.defaultChild as never)].Properties;

    // Assess
    expect(props.Handler).toBe('index.handler');
    expect(existsSync(join(dir, 'index.mjs'))).toBe(true);
    expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
    expect(readFileSync(join(dir, 'index.mjs'), 'utf8').startsWith('import { createRequire')).toBe(true);
  });

  it("gives the upload function what users' processors declare (their manifests), never their modules", () => {
    // Act
    const dir = bundleDir(s, 'upload');
    const map = JSON.parse(readFileSync(join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] };
    const code = readFileSync(join(dir, 'index.mjs'), 'utf8');

    // Assess
    expect(map.sources.some((f) => f.endsWith('processors/webhook.ts'))).toBe(false);
    expect(code).toContain('"processors/webhook.ts"');
    expect(code).toContain('webhooks/<n>.json: POSTs each row as JSON');
  });

  it('loads every bundle as an ES module in plain Node and finds `handler`', () => {
    // Prepare: a separate node process, as Lambda loads it (no test-runner transform)
    const bundles = names.map((name) => pathToFileURL(join(bundleDir(s, name), 'index.mjs')).href);
    const script = `for (const u of ${JSON.stringify(bundles)}) { const m = await import(u); console.log(typeof m.handler); }`;

    // Act
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    });

    // Assess
    expect(out.trim().split('\n')).toEqual(names.map(() => 'function'));
  });
});
