// The `rowfleet` command and the local runtime's own processes (the background runtime, the emulator host) as
// prebuilt ES modules, so that a command starts without compiling TypeScript: with tsx at run time every command
// paid ~1 s per process (CLI, runtime, emulator host) before doing anything (issue 22, start-up).
//
// Built by esbuild (which tsx brings anyway) into node_modules/.cache/rowfleet/commands.<target>/ on first use, and
// again whenever an input changed. Plain JavaScript that runs before any TypeScript loader
// (cli/rowfleet.mjs). A bundle is taken only when every one of its inputs (each project file esbuild read, the
// build recipe, esbuild's version, the repository's place) hashes as it did at build time: a stale bundle never runs,
// whatever the files' modification times say (a checkout, a copy that keeps times, a clock change).
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL, URL } from 'node:url';
import { REQUIRE_BANNER, requireCommonJs } from '../local/esbuild-commonjs.mjs';

export { REQUIRE_BANNER, requireCommonJs };

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOYED_MAJOR = require('../config/node.json').deployedMajor;

/** The processes built, by output name: what each runs. */
export const COMMAND_ENTRIES = {
  cli: 'cli/cli.ts',
  daemon: 'local/daemon.ts',
  'emulator-host': 'local/emulator-host.ts',
};

/**
 * Changes whenever the way the bundle is made changes (options below, the plugins): a bundle of another recipe is
 * never taken for this one.
 */
const RECIPE = 'commands-6';

/** Project files outside the import graph that change how esbuild builds it. */
const BUILD_INPUTS = ['tsconfig.json', 'package.json'];

/**
 * @typedef {object} BundleOptions
 * @property {string} [root] the project the entries are in (default: this repository)
 * @property {Record<string, string>} [entries] output name → entry file relative to root (default: COMMAND_ENTRIES)
 * @property {string} [outDir] where the bundle goes (default: <root>/node_modules/.cache/rowfleet/commands.node<N>)
 */

/** @param {BundleOptions} o */
function settings(o = {}) {
  const root = resolve(o.root ?? ROOT);
  const entries = o.entries ?? COMMAND_ENTRIES;
  const outDir = resolve(
    o.outDir ?? join(root, 'node_modules', '.cache', 'rowfleet', `commands.node${DEPLOYED_MAJOR}`),
  );
  return { root, entries, outDir, manifest: join(outDir, 'manifest.json') };
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

function esbuildVersion() {
  try {
    return require('esbuild/package.json').version;
  } catch {
    return undefined;
  }
}

/** What a bundle must have been built from to be taken: anything else in its manifest means rebuild. */
function recipeOf(s) {
  return JSON.stringify({ recipe: RECIPE, root: s.root, entries: s.entries, esbuild: esbuildVersion() });
}

/**
 * The bundle's entry files by name when the bundle in `outDir` is current: built by this recipe from exactly the
 * inputs there are now (content hashes); undefined otherwise (absent, stale, unreadable).
 * @param {BundleOptions} [o]
 * @returns {Record<string, string> | undefined}
 */
export function currentBundle(o) {
  const s = settings(o);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(s.manifest, 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.recipe !== recipeOf(s)) return undefined;
  for (const [file, hash] of Object.entries(manifest.inputs)) {
    try {
      if (sha256(readFileSync(join(s.root, file))) !== hash) return undefined;
    } catch {
      return undefined;
    }
  }
  return Object.fromEntries(Object.keys(s.entries).map((name) => [name, join(s.outDir, `${name}.mjs`)]));
}

const isChunk = (path) => path.includes(`${sep}chunks${sep}`);

/** A chunk no build has written for this long is not loaded by any process started from an older bundle. */
const OLD_CHUNK_MS = 24 * 3600 * 1000;

/** Removes the chunks of earlier builds once they are old (a command still running may load one of its own). */
function removeOldChunks(outDir, keep) {
  const dir = join(outDir, 'chunks');
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      if (!keep.has(path) && Date.now() - statSync(path).mtimeMs > OLD_CHUNK_MS)
        rmSync(path, { force: true });
    } catch {
      // removed by another build meanwhile
    }
  }
}

/** Writes a file under a temporary name and renames it: a reader sees the old file or the new, never half. */
function writeAtomically(path, data) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Builds the bundle (one ES module per entry, packages imported from node_modules at run time) and its manifest,
 * written last: concurrent builds are safe (each file is renamed into place; the same inputs give the same files).
 * @param {BundleOptions} [o]
 * @returns {Promise<Record<string, string>>} the entry files by name
 */
export async function buildBundle(o) {
  const s = settings(o);
  const { build } = await import('esbuild');
  const recipe = recipeOf(s);
  const result = await build({
    absWorkingDir: s.root,
    entryPoints: Object.fromEntries(Object.entries(s.entries).map(([n, f]) => [n, join(s.root, f)])),
    outdir: s.outDir,
    outExtension: { '.js': '.mjs' },
    // What a process loads only when it needs it (`await import`) is a chunk of its own, loaded then: without
    // splitting, esbuild would hoist the package imports of every lazily loaded module to the entry's start.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    write: false,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: `node${DEPLOYED_MAJOR}`,
    // A map beside each file, not inline: `NODE_OPTIONS=--enable-source-maps` maps stacks to the sources, and a
    // start without it does not read the map.
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
    define: { __ROWFLEET_COMMAND_BUNDLE__: JSON.stringify(s.outDir), 'import.meta.url': SOURCE_URL },
    banner: { js: REQUIRE_BANNER },
    plugins: [sourceLocations(s.root), nodeModulesAtRunTime(), requireCommonJs()],
  });
  // Chunks (named by their content) before the entries that import them, the manifest last.
  const files = [...result.outputFiles].sort((a, b) => Number(isChunk(b.path)) - Number(isChunk(a.path)));
  for (const f of files) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeAtomically(f.path, f.contents);
  }
  removeOldChunks(s.outDir, new Set(files.map((f) => f.path)));
  const inputs = [
    // Files only (a `namespace:` input is made by a plugin from the specifier alone).
    ...Object.keys(result.metafile.inputs).filter((f) => !/^[a-z-]+:/.test(f)),
    ...BUILD_INPUTS.filter((f) => existsSync(join(s.root, f))),
  ].sort();
  const hashes = Object.fromEntries(
    inputs.map((f) => [relative(s.root, resolve(s.root, f)), sha256(readFileSync(resolve(s.root, f)))]),
  );
  writeAtomically(s.manifest, JSON.stringify({ recipe, builtAt: new Date().toISOString(), inputs: hashes }));
  return Object.fromEntries(Object.keys(s.entries).map((name) => [name, join(s.outDir, `${name}.mjs`)]));
}

/** What `import.meta.url` stands for in the bundle: each source module's own constant (its file's URL). */
const SOURCE_URL = '__rowfleetSourceUrl';

/**
 * Each source keeps its own `import.meta.url`: code that finds files beside it (config, the console's sources,
 * users' processors, the worker's entry) finds them where it did from the sources, and behaves as from the sources.
 */
function sourceLocations(root) {
  return {
    name: 'rowfleet-source-locations',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
        if (!args.path.startsWith(root + sep) || args.path.includes(`${sep}node_modules${sep}`))
          return undefined;
        // On the first line, so the lines of the source map stay the sources'.
        const own = `const ${SOURCE_URL} = ${JSON.stringify(pathToFileURL(args.path).href)};`;
        const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js';
        return { contents: own + readFileSync(args.path, 'utf8'), loader };
      });
    },
  };
}

/**
 * A source that imports a package's file by its path (local/emulators.ts: fauxqs's stores) gets the package's own
 * module at run time, as a package import would: a second copy in the bundle would be another class (instanceof).
 * By its absolute path: the bundle is built for this checkout only (its place is in the recipe).
 */
function nodeModulesAtRunTime() {
  return {
    name: 'rowfleet-node-modules-at-run-time',
    setup(b) {
      b.onResolve({ filter: /(^|\/)node_modules\// }, (args) => ({
        path: resolve(args.resolveDir, args.path),
        external: true,
      }));
    },
  };
}

/**
 * The bundle to run: the current one, else one built now. Undefined when it cannot be built (no esbuild, a source
 * that does not build): the caller runs from the sources, which report the problem as they always did.
 * @param {BundleOptions} [o]
 * @returns {Promise<Record<string, string> | undefined>}
 */
export async function commandBundle(o) {
  const current = currentBundle(o);
  if (current) return current;
  try {
    return await buildBundle(o);
  } catch {
    return undefined;
  }
}

/** Removes the bundle (tests, or to force a rebuild). @param {BundleOptions} [o] */
export function removeBundle(o) {
  rmSync(settings(o).outDir, { recursive: true, force: true });
}

/** Where the bundle is kept. @param {BundleOptions} [o] */
export const bundleDir = (o) => settings(o).outDir;
