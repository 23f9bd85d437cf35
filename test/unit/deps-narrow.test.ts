import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.ts';

/**
 * docs/DESIGN.md's rule for the dependency bag: a step of core/ takes the dependencies it uses,
 * `Pick<PipelineDeps, 'jobs' | 'queues'>` (or a named alias of one), never the whole `PipelineDeps` — its signature
 * then says which stores it touches, and a test gives it only those. Only core/deps.ts (the composition root that
 * builds the bag) and the entry points listed below name the whole bag.
 */

/** `core/<file>.ts:<function>` that may take the whole bag because they hand it on to most steps: none today. */
const WHOLE_BAG_ENTRY_POINTS: readonly string[] = [];

/**
 * Every place a file names the whole bag: a reference to the type `PipelineDeps` that is not the first type argument
 * of `Pick<>` (a parameter, a field, an alias, an intersection, `Omit<>`, `Partial<>`, an `extends`), as
 * `<file>:<enclosing function or type>`.
 */
function wholeBagUses(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const owner = (n: ts.Node): string => {
    for (let p: ts.Node | undefined = n; p; p = p.parent) {
      if (
        (ts.isFunctionLike(p) ||
          ts.isClassLike(p) ||
          ts.isTypeAliasDeclaration(p) ||
          ts.isInterfaceDeclaration(p)) &&
        p.name
      )
        return p.name.getText(sf);
      if (ts.isVariableDeclaration(p)) return p.name.getText(sf);
    }
    return '<module>';
  };
  const inPick = (n: ts.Node) => {
    const p = n.parent;
    return ts.isTypeReferenceNode(p) && p.typeName.getText(sf) === 'Pick' && p.typeArguments?.[0] === n;
  };
  const visit = (n: ts.Node): void => {
    const named =
      (ts.isTypeReferenceNode(n) && n.typeName.getText(sf) === 'PipelineDeps') ||
      (ts.isExpressionWithTypeArguments(n) && n.expression.getText(sf) === 'PipelineDeps');
    if (named && !inPick(n)) out.push(`${file}:${owner(n)}`);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function coreUses(): string[] {
  return (readdirSync(join(REPO_ROOT, 'core'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && f !== 'deps.ts')
    .sort()
    .flatMap((f) => wholeBagUses(`core/${f}`, readFileSync(join(REPO_ROOT, 'core', f), 'utf8')));
}

describe('Property: no step of core/ takes the whole dependency bag', () => {
  it('is taken whole by no step of core/: each takes Pick<PipelineDeps, …> of what it uses', () => {
    // Act
    const uses = coreUses().filter((u) => !WHOLE_BAG_ENTRY_POINTS.includes(u));

    // Assess
    expect(uses).toEqual([]);
  });

  it('keeps its exceptions true: each listed entry point still names the whole bag', () => {
    // Act
    const uses = coreUses();

    // Assess: a stale exception would let a new whole-bag step in unseen
    for (const e of WHOLE_BAG_ENTRY_POINTS) expect(uses, e).toContain(e);
  });

  it('finds the whole bag however a file names it, and lets a Pick through', () => {
    // Prepare
    const text = [
      "import type { PipelineDeps } from '../deps.ts';",
      'export async function narrow(deps: Pick<PipelineDeps, "jobs">): Promise<void> {}',
      'export async function whole(deps: PipelineDeps): Promise<void> {}',
      'const arrow = (deps: PipelineDeps & { extra: 1 }) => deps;',
      'type Most = Omit<PipelineDeps, "traces">;',
      'interface Worker { readonly deps: PipelineDeps }',
      'interface More extends PipelineDeps {}',
      'export class Step { constructor(private readonly deps: Partial<PipelineDeps>) {} }',
    ].join('\n');

    // Act
    const uses = wholeBagUses('core/x/sample.ts', text);

    // Assess
    expect(uses).toEqual([
      'core/x/sample.ts:whole',
      'core/x/sample.ts:arrow',
      'core/x/sample.ts:Most',
      'core/x/sample.ts:Worker',
      'core/x/sample.ts:More',
      'core/x/sample.ts:Step',
    ]);
  });
});
