import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../../config/env.ts';
import { REPO_ROOT } from '../../helpers/cli.ts';

/** The folders whose code sets or reads Rowfleet's environment (tests and docs may name the variables freely). */
const SOURCES = ['config', 'core', 'lambdas', 'fargate-worker', 'local', 'lib', 'bin', 'cli', 'scripts'];

/** The code files below `dir` (none when it does not exist). */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|tsx|mjs|js)$/.test(f) && !/(^|\/)(node_modules|cdk\.out)\//.test(f))
    .map((f) => join(dir, f));
}

/** Strings that are a variable's name by coincidence, each with its reason. */
const NOT_VARIABLES: Readonly<Record<string, string>> = {
  // The budget item's sort key in the job table (one item per stage), stored data that cannot be renamed.
  'core/budget/store.ts STAGE': "const BUDGET_SK = 'STAGE';",
};

/**
 * Where code spells a variable's name instead of taking it from ENV: as a string, as `env.NAME`, or as an object key
 * (`NAME: value` or shorthand `NAME,`). Comments may name it.
 */
function spelled(text: string, name: string): number[] {
  const code = new RegExp(`(['"\`])${name}\\1|\\benv\\??\\.${name}\\b|^\\s*${name}\\s*[:,]`);
  return text
    .split('\n')
    .flatMap((line, i) => (/^\s*(\/\/|\*|\/\*)/.test(line) || !code.test(line) ? [] : [i + 1]));
}

describe('the environment contract (config/env.ts)', () => {
  it('spells each name once', () => {
    const names = Object.values(ENV);
    expect(new Set(names).size).toBe(names.length);
  });

  it('finds a name written out in code', () => {
    expect(spelled(`const a = requireEnv('TABLE_NAME', env);`, 'TABLE_NAME')).toEqual([1]);
    expect(spelled(`x\n  const t = env.TABLE_NAME;`, 'TABLE_NAME')).toEqual([2]);
    expect(spelled(`{\n  TABLE_NAME: t,\n  WORKER_CONTAINER_NAME,\n}`, 'TABLE_NAME')).toEqual([2]);
    expect(spelled(`{\n  WORKER_CONTAINER_NAME,\n}`, 'WORKER_CONTAINER_NAME')).toEqual([2]);
    expect(spelled(` * TABLE_NAME, with exactly the actions`, 'TABLE_NAME')).toEqual([]);
    expect(spelled(`const k = [ENV.table]: t;`, 'TABLE_NAME')).toEqual([]);
  });

  it('is the only place code names a variable: lib/ and local/ set, core/ reads, through ENV', () => {
    const found: string[] = [];
    for (const dir of SOURCES)
      for (const file of files(join(REPO_ROOT, dir))) {
        const rel = relative(REPO_ROOT, file);
        if (rel === 'config/env.ts') continue;
        const text = readFileSync(file, 'utf8');
        for (const name of Object.values(ENV))
          for (const line of spelled(text, name))
            if (text.split('\n')[line - 1]?.trim() !== NOT_VARIABLES[`${rel} ${name}`])
              found.push(`${rel}:${line} ${name}`);
      }
    expect(found).toEqual([]);
  });
});
