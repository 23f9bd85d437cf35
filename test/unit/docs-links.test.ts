import { existsSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.ts';
import {
  anchors,
  codeSpans,
  DOC_PATHS,
  parseDoc,
  readDoc,
  slug,
  trackedFiles,
  type DocFile,
} from '../helpers/docs.ts';

/**
 * The docs point at what exists: every relative link (and image) of README.md, RUNBOOK.md and docs/*.md names a
 * file of the repository, every `#anchor` a heading of its page, and every repository path written in backticks
 * (`core/split/split.ts`, `test/e2e/`) a tracked file or folder. The README stays a guide a newcomer reads in ten
 * minutes: at most 400 lines, depth in docs/.
 */

/** Paths the docs name on purpose that a clean clone does not hold, each with why. */
const GENERATED: Readonly<Record<string, string>> = {
  'reports/mutation/mutation.json': "Stryker's full report, rewritten by every run (not committed)",
  'lib/api-models.json': 'generated from the request schema by `npm run gen:api-models`',
};

const README_MAX_LINES = 400;

interface Tree {
  readonly files: ReadonlySet<string>;
  /** Top-level names of tracked files: only backticked paths under one of them are read as repository paths. */
  readonly roots: ReadonlySet<string>;
}

function treeOf(files: ReadonlySet<string>): Tree {
  return { files, roots: new Set([...files].map((f) => f.split('/')[0]!)) };
}

/** A tracked file, or a folder holding one (with or without its trailing slash). */
function inTree(tree: Tree, path: string): boolean {
  const p = path.replace(/\/+$/, '');
  if (p === '' || tree.files.has(p) || p in GENERATED) return true;
  for (const f of tree.files) if (f.startsWith(`${p}/`)) return true;
  return false;
}

/**
 * A backticked span read as a repository path: one word with a slash, under a tracked top-level name. A segment
 * with a placeholder or a pattern (`lambdas/<name>/handler.ts`, `docs/screenshots/*.png`, `core/{a,b}.ts`) is
 * checked up to the folder before it; a `:line` suffix is dropped.
 */
function repoPath(span: string, tree: Tree): string | undefined {
  if (/\s/.test(span) || !span.includes('/') || span.includes('://')) return undefined;
  const path = span.replace(/:\d+(-\d+)?$/, '');
  const segments = path.split('/');
  if (!tree.roots.has(segments[0]!)) return undefined;
  const wild = segments.findIndex((s) => /[<>*{}$…]/.test(s));
  return wild === -1 ? path : `${segments.slice(0, wild).join('/')}/`;
}

function brokenPaths(doc: DocFile, tree: Tree): string[] {
  return codeSpans(doc.prose)
    .map((span) => repoPath(span, tree))
    .filter((p): p is string => p !== undefined && !inTree(tree, p))
    .map((p) => `${doc.path}: \`${p}\` is not in the repository`);
}

function brokenLinks(doc: DocFile, tree: Tree, anchorsOf: (path: string) => Set<string>): string[] {
  const prose = doc.prose.replace(/(`+)[^`]+?\1/g, '');
  const problems: string[] = [];
  for (const m of prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][\w+.-]*:/i.test(target)) continue; // https:, mailto:
    const [file = '', anchor] = target.split('#', 2);
    const path = file === '' ? doc.path : normalize(join(dirname(doc.path), decodeURIComponent(file)));
    if (file !== '' && (path.startsWith('..') || !inTree(tree, path))) {
      problems.push(`${doc.path}: link ${target} names ${path}, not in the repository`);
      continue;
    }
    if (anchor !== undefined && path.endsWith('.md') && !anchorsOf(path).has(anchor))
      problems.push(`${doc.path}: link ${target}: no heading of ${path} has the anchor #${anchor}`);
  }
  return problems;
}

const tree = treeOf(trackedFiles());
const docs = DOC_PATHS.map(readDoc);
const anchorCache = new Map<string, Set<string>>();
const anchorsOf = (path: string): Set<string> => {
  let a = anchorCache.get(path);
  if (!a) anchorCache.set(path, (a = existsSync(join(REPO_ROOT, path)) ? anchors(readDoc(path)) : new Set()));
  return a;
};

describe('Function: slug', () => {
  it.each([
    ['Cancel, retry, stop early', 'cancel-retry-stop-early'],
    ['Bulk mail (the `mail` processor)', 'bulk-mail-the-mail-processor'],
    ['4. The layout and its rules', '4-the-layout-and-its-rules'],
    ['Written here, not taken from a library — and why', 'written-here-not-taken-from-a-library--and-why'],
    ["results.csv's cost", 'resultscsvs-cost'],
    ['Why 1.0× is out of reach', 'why-10-is-out-of-reach'],
    ['Pre-deploy check: `rowfleet doctor`', 'pre-deploy-check-rowfleet-doctor'],
    ['Networking: `infra.workerNetwork`', 'networking-infraworkernetwork'],
  ])('%s → #%s', (heading, expected) => {
    // Act
    const anchor = slug(heading);

    // Assess
    expect(anchor).toBe(expected);
  });
});

describe('Scenario: the checker finds what is broken', () => {
  const forged: DocFile = parseDoc(
    'docs/forged.md',
    [
      '# Forged',
      '',
      'See [the design](DESIGN.md#2-the-promises-and-who-keeps-them), [nowhere](nowhere.md),',
      '[a lost heading](#not-a-heading), [its own heading](#forged) and [the web](https://example.com).',
      'Code in `core/split/split.ts`, `core/split/gone.ts`, `lambdas/<name>/handler.ts`, `nope/<x>/y.ts`,',
      '`text/csv` and `jobs/*/failed.jsonl` (S3 keys and media types are not repository paths).',
      '',
      '```sh',
      '# not a heading',
      '```',
    ].join('\n'),
  );

  it('reports a missing file and a missing anchor, and nothing else', () => {
    // Act
    const problems = brokenLinks(forged, tree, (p) => (p === forged.path ? anchors(forged) : anchorsOf(p)));

    // Assess
    expect(problems).toEqual([
      'docs/forged.md: link nowhere.md names docs/nowhere.md, not in the repository',
      'docs/forged.md: link #not-a-heading: no heading of docs/forged.md has the anchor #not-a-heading',
    ]);
  });

  it('reports a backticked repository path that does not exist, and nothing else', () => {
    // Act
    const problems = brokenPaths(forged, tree);

    // Assess
    expect(problems).toEqual(['docs/forged.md: `core/split/gone.ts` is not in the repository']);
  });
});

describe('Scenario: README.md, RUNBOOK.md and docs/*.md', () => {
  it('names docs/ pages that exist', () => {
    // Assess
    expect(DOC_PATHS).toEqual(expect.arrayContaining(['docs/DESIGN.md', 'docs/performance.md']));
  });

  it('links only to files that exist and headings that exist', () => {
    // Act
    const problems = docs.flatMap((d) => brokenLinks(d, tree, anchorsOf));

    // Assess
    expect(problems).toEqual([]);
  });

  it('names in backticks only repository paths that exist', () => {
    // Act
    const problems = docs.flatMap((d) => brokenPaths(d, tree));

    // Assess
    expect(problems).toEqual([]);
  });

  it(`keeps the README to at most ${README_MAX_LINES} lines`, () => {
    // Act
    const lines = readDoc('README.md').text.trimEnd().split('\n').length;

    // Assess
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });
});
