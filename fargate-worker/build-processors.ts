/**
 * Users' processors built one per file, beside the worker's bundle (which holds none of them): `<name>.mjs` for a
 * file that builds, `<name>.error.txt` (its errors) for one that does not. A worker imports only its job's file
 * (core/processors/index.ts), so a syntax error in one processor breaks only the jobs that name it.
 *
 * Used by the local launcher (local/launcher.ts) and by the worker image's build (fargate-worker/Dockerfile):
 *   tsx fargate-worker/build-processors.ts <processors dir> <out dir> --strict
 * `--strict` (the image) fails, naming each broken file and its error, instead of shipping a broken processor.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildFailure } from 'esbuild';
import { buildErrorFile, builtFile, namesIn, sourceName } from '../core/processors/users.ts';
import { writeFileAtomicSync } from '../core/shared/atomic-write.ts';

export interface ProcessorBuildOptions {
  /** Bundle the packages a processor imports (the image has no node_modules) and minify. @default false */
  readonly standalone?: boolean;
  /** Rebuild only files older than this time (ms) or than their source. @default rebuild all */
  readonly sourcesChangedAt?: number;
}

export interface BuiltProcessors {
  readonly built: readonly string[];
  readonly broken: readonly { readonly name: string; readonly file: string; readonly error: string }[];
}

/** Lets an ESM bundle load CommonJS dependencies that call `require` (as the worker's own bundle does). */
const REQUIRE_BANNER =
  "import { createRequire as __rowfleetCreateRequire } from 'node:module'; const require = __rowfleetCreateRequire(import.meta.url);";

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** esbuild's errors as one line each: `file:line:column: text`. */
function buildErrors(err: unknown): string {
  const errors = (err as Partial<BuildFailure>).errors;
  if (!errors?.length) return err instanceof Error ? err.message : String(err);
  return errors
    .slice(0, 5)
    .map((e) =>
      e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text,
    )
    .join('; ');
}

/** Builds each processor of `srcDir` into `outDir` on its own; a file that does not build gets its error file. */
export async function buildProcessors(
  srcDir: string,
  outDir: string,
  o: ProcessorBuildOptions = {},
): Promise<BuiltProcessors> {
  mkdirSync(outDir, { recursive: true });
  const names = namesIn(srcDir, '.ts');
  // Loaded when a build is due, not with the local launcher that imports this file.
  let esbuild: typeof import('esbuild') | undefined;
  // Processors whose file is gone are gone from the build too.
  for (const f of readdirSync(outDir)) {
    const name = f.replace(/(\.error\.txt|\.mjs)$/, '');
    if (name !== f && !names.includes(name)) rmSync(join(outDir, f), { force: true });
  }
  const built: string[] = [];
  const broken: { name: string; file: string; error: string }[] = [];
  for (const name of names) {
    const src = join(srcDir, `${name}.ts`);
    const out = builtFile(outDir, name);
    const errFile = buildErrorFile(outDir, name);
    const done = Math.max(mtime(out), mtime(errFile));
    if (o.sourcesChangedAt !== undefined && done > Math.max(o.sourcesChangedAt, mtime(src))) {
      if (mtime(out) >= mtime(errFile)) built.push(name);
      else broken.push({ name, file: sourceName(name), error: readFileSync(errFile, 'utf8').trim() });
      continue;
    }
    // Built into a folder of its own, then moved: concurrent builds never see half a file.
    const tmpDir = join(outDir, `.build-${process.pid}-${name}`);
    const tmp = join(tmpDir, `${name}.mjs`);
    try {
      esbuild ??= await import('esbuild');
      await esbuild.build({
        entryPoints: [src],
        outfile: tmp,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        logLevel: 'silent',
        ...(o.standalone
          ? { minify: true, sourcemap: true, sourcesContent: false, banner: { js: REQUIRE_BANNER } }
          : { packages: 'external', sourcemap: 'inline' }),
      });
      if (o.standalone) renameSync(`${tmp}.map`, `${out}.map`);
      renameSync(tmp, out);
      rmSync(errFile, { force: true });
      built.push(name);
    } catch (err) {
      const error = buildErrors(err);
      writeFileAtomicSync(errFile, error + '\n');
      rmSync(out, { force: true });
      broken.push({ name, file: sourceName(name), error });
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  }
  return { built, broken };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [srcDir, outDir] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  if (!srcDir || !outDir) {
    process.stderr.write('usage: build-processors.ts <processors dir> <out dir> [--strict]\n');
    process.exit(2);
  }
  const strict = process.argv.includes('--strict');
  const r = await buildProcessors(resolve(srcDir), resolve(outDir), { standalone: strict });
  for (const b of r.broken) process.stderr.write(`${b.file}: does not build: ${b.error}\n`);
  process.stdout.write(`processors built: ${r.built.join(', ') || 'none'}\n`);
  if (strict && r.broken.length > 0) process.exit(1);
}
