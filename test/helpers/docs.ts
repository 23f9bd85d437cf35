import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.ts';

/**
 * The project's documentation as the docs tests read it: README.md, RUNBOOK.md and docs/*.md, with their fenced
 * code blocks, inline code spans and headings told apart (a `# comment` in a shell block is not a heading, a
 * `[x](y)` in a code span is not a link).
 */
export interface DocFile {
  /** Repository-relative path, e.g. `docs/DESIGN.md`. */
  readonly path: string;
  readonly text: string;
  /** The contents of each fenced code block, with its info string (`sh`, `ts`, …; empty when none). */
  readonly blocks: readonly { readonly lang: string; readonly body: string }[];
  /** The text outside fenced code blocks. */
  readonly prose: string;
}

export const DOC_PATHS: readonly string[] = [
  'README.md',
  'RUNBOOK.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

const FENCE = /^(`{3,}|~{3,})\s*([\w-]*)[^\n]*\n([\s\S]*?)^\1[ \t]*$/gm;

export function readDoc(path: string): DocFile {
  return parseDoc(path, readFileSync(join(REPO_ROOT, path), 'utf8'));
}

export function parseDoc(path: string, text: string): DocFile {
  const blocks = [...text.matchAll(FENCE)].map((m) => ({ lang: m[2]!, body: m[3]! }));
  return { path, text, blocks, prose: text.replace(FENCE, '') };
}

/** The inline code spans of some prose (single or double backticks). */
export function codeSpans(prose: string): string[] {
  return [...prose.matchAll(/(`+)([^`]+?)\1/g)].map((m) => m[2]!.trim());
}

/**
 * GitHub's anchor for a heading (github-slugger's rule): the rendered text lower-cased, every character that is
 * not a letter, mark, number, connector punctuation, space or hyphen dropped, spaces made hyphens.
 */
export function slug(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim();
  return rendered
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a document's headings define, duplicates numbered as GitHub numbers them (`x`, `x-1`, …). */
export function anchors(doc: DocFile): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of doc.prose.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The files git tracks (staged ones included): what a clean clone has. */
export function trackedFiles(): Set<string> {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return new Set(out.split('\0').filter(Boolean));
}
