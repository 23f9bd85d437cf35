/**
 * The console's wire types are core's: web/src/types.ts re-exports the answers of the API from core's wire
 * modules (core/<folder>/wire.ts) instead of writing them again, so a field core renames or retypes breaks the
 * console's type-check, not the console at run time. That only works while the wire modules stay readable under
 * web/tsconfig.json (DOM, no Node types): they may import only each other and core/jobs/states.ts (no imports).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/cli.ts';

const CORE = join(REPO_ROOT, 'core');
const STATES = join(CORE, 'jobs', 'states.ts');
const wireModules = readdirSync(CORE, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => join(CORE, d.name, 'wire.ts'))
  .filter((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  });

/** The modules a file imports or re-exports, as paths from the repository (bare specifiers as they are). */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map(({ fileName }) =>
    fileName.startsWith('.') ? relative(REPO_ROOT, resolve(dirname(file), fileName)) : fileName,
  );
}

/** The console's names for what core answers: each must be declared in a core wire module. */
const CORE_ANSWERS = [
  'Timeline',
  'TimelineBar',
  'TimelineLane',
  'TimelinePhase',
  'AttemptView',
  'CheckEstimate',
  'CheckOutput',
  'CheckProblem',
  'CheckRejected',
  'CheckResult',
  'CheckSample',
  'ErrorPage',
  'ErrorRow',
  'JobView',
  'JobsPage',
  'NotRun',
  'OfficeLine',
  'PeriodUsage',
  'ResubmitResult',
  'UsageFigures',
  'UsageResponse',
] as const;

describe('Wire types: the console reads core’s own types', () => {
  it('finds the wire modules of jobs, messages, usage, processors, finalize and intake', () => {
    expect(wireModules.map((p) => relative(CORE, p)).sort()).toEqual([
      'finalize/wire.ts',
      'intake/wire.ts',
      'jobs/wire.ts',
      'messages/wire.ts',
      'processors/wire.ts',
      'shared/wire.ts',
      'usage/wire.ts',
    ]);
  });

  it('keeps the wire modules free of Node and the SDK: they import only each other and the job states', () => {
    const allowed = new Set([...wireModules, STATES].map((p) => relative(REPO_ROOT, p)));
    const outside = wireModules.flatMap((m) =>
      importsOf(m)
        .filter((i) => !allowed.has(i))
        .map((i) => `${relative(REPO_ROOT, m)} imports ${i}`),
    );
    expect(outside).toEqual([]);
    expect(importsOf(STATES)).toEqual([]);
  });

  it('takes every answer of the API in web/src/types.ts from a core wire module, declaring none of them again', () => {
    const types = join(REPO_ROOT, 'web', 'src', 'types.ts');
    const program = ts.createProgram([types], { noEmit: true, allowImportingTsExtensions: true, types: [] });
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(types);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error('web/src/types.ts did not load');
    const declaredIn = new Map(
      checker.getExportsOfModule(moduleSymbol).map((s) => {
        const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
        const file = target.declarations?.[0]?.getSourceFile().fileName ?? '';
        return [s.name, relative(REPO_ROOT, file)] as const;
      }),
    );
    const wire = new Set(wireModules.map((p) => relative(REPO_ROOT, p)));
    const notFromCore = CORE_ANSWERS.filter((name) => !wire.has(declaredIn.get(name) ?? '')).map(
      (name) => `${name}: ${declaredIn.get(name) ?? 'not exported'}`,
    );
    expect(notFromCore).toEqual([]);
  });
});
