import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getStage } from '../config/index.ts';
import { DEFAULT_PROCESSOR, processorNames } from '../core/processors/index.ts';
import { CONSOLE_FILES } from '../core/intake/console.ts';
import type { ConsoleSettings } from './src/types.ts';

const WEB = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(WEB, '..');
const SRC = join(WEB, 'src');
/** What a console build depends on: its sources, and the config and processors its settings come from. */
const SOURCES = [SRC, join(ROOT, 'config'), join(ROOT, 'core', 'processors')];

/** The built console: exactly these files, served as they are (core/intake/console.ts). */
export { CONSOLE_FILES };

export interface ConsoleBuildOptions {
  /** The stage whose limits the console uses (direct-upload limit). @default 'local' */
  readonly stage?: string;
  /** @default web/dist/<stage> */
  readonly outDir?: string;
  /** Where the API is, relative to the console's page (the `rowfleet-api-base` meta tag). @default '../' */
  readonly apiBase?: string;
}

/** Facts the console needs from config/ and core/, put into the bundle at build time (never written twice). */
export function consoleSettings(stage: string): ConsoleSettings {
  return {
    directUploadMaxBytes: getStage(stage).limits.directUploadMaxBytes,
    processors: processorNames(),
    defaultProcessor: DEFAULT_PROCESSOR,
  };
}

export const defaultConsoleDir = (stage = 'local') => join(WEB, 'dist', stage);

function escapeAttribute(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Writes a file under a temporary name and renames it, so a reader never sees half a file. */
function writeAtomically(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Builds the console into `outDir`: index.html, app.js (one ES module: the app and Preact) and app.css.
 * No CDN, no inline script or style; the Content-Security-Policy is sent by the server (web/server.ts).
 */
export async function buildConsole(o: ConsoleBuildOptions = {}): Promise<string> {
  const stage = o.stage ?? 'local';
  const outDir = resolve(o.outDir ?? defaultConsoleDir(stage));
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { app: join(SRC, 'main.tsx') },
    outdir: outDir,
    write: false,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox115', 'safari16.4'],
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(WEB, 'tsconfig.json'),
    define: { __ROWFLEET_CONSOLE__: JSON.stringify(consoleSettings(stage)) },
    legalComments: 'none',
    logLevel: 'error',
  });
  mkdirSync(outDir, { recursive: true });
  for (const f of result.outputFiles) writeAtomically(f.path, f.contents);
  const html = readFileSync(join(SRC, 'index.html'), 'utf8').replace(
    /(<meta name="rowfleet-api-base" content=")[^"]*(")/,
    `$1${escapeAttribute(o.apiBase ?? '../')}$2`,
  );
  // index.html last: it names the other two.
  writeAtomically(join(outDir, 'index.html'), html);
  return outDir;
}

/** The newest modification time of any file below `dir` (whether a build is older than its sources). */
export function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The built console of a stage, built now when a source is newer than the last build (like the worker bundle
 * of local/launcher.ts): what the local runtime serves.
 */
export async function consoleAssets(o: ConsoleBuildOptions = {}): Promise<string> {
  const outDir = resolve(o.outDir ?? defaultConsoleDir(o.stage));
  let built = 0;
  try {
    built = Math.min(...CONSOLE_FILES.map((f) => statSync(join(outDir, f)).mtimeMs));
  } catch {
    // not built yet
  }
  if (built > Math.max(...SOURCES.map(newestSource))) return outDir;
  return buildConsole({ ...o, outDir });
}

// npm run build:web [-- --stage <stage>] [--out <dir>]
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const dir = await buildConsole({ stage: arg('--stage'), outDir: arg('--out') });
  const sizes = CONSOLE_FILES.map((f) => `${f} ${statSync(join(dir, f)).size} B`).join(', ');
  process.stdout.write(`console built in ${dir}: ${sizes}\n`);
}
