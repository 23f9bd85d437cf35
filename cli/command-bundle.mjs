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
const { deployedMajor: DEPLOYED_MAJOR, httpAlias: NODE_HTTP_ALIAS } = require('../config/node.json');

/** The processes built, by output name: what each runs. */
export const COMMAND_ENTRIES = {
  cli: 'cli/cli.ts',
  daemon: 'local/daemon.ts',
  'emulator-host': 'local/emulator-host.ts',
  'lambda-host': 'local/lambda-host.ts',
};

/**
 * The entries built with their packages in them, each on its own: the background runtime, whose modules (the
 * handlers, the AWS SDK, Powertools, OpenTelemetry) every command that starts it waits for. Loaded from one file they
 * take ~0.2 s of CPU against ~0.43 s resolved file by file from node_modules (2026-12-07, issue 22, start-up). The
 * same for the host of a function run in a process of its own (`npm run bench`: a Lambda runs its bundle, not
 * TypeScript compiled as it loads). The command itself and the emulator host keep their packages in node_modules
 * (the host patches fauxqs's own files).
 */
export const SELF_CONTAINED = ['daemon', 'lambda-host'];

/**
 * Packages a self-contained entry still loads from node_modules at run time: esbuild and tsx (a binary of their own,
 * resolved by path), and the emulators' packages, which run in the emulator host.
 */
const RUN_TIME_PACKAGES = ['esbuild', 'tsx', 'fauxqs', 'dynalite', 'aws-ses-v2-local'];

/**
 * Changes whenever the way the bundle is made changes (options below, the plugins): a bundle of another recipe is
 * never taken for this one.
 */
const RECIPE = 'commands-9';

/**
 * Project files outside the import graph that change how esbuild builds it; the lock files stand for the packages a
 * self-contained entry holds (`npm ci` rewrites node_modules/.package-lock.json), whose own files are not hashed.
 */
const BUILD_INPUTS = [
  'tsconfig.json',
  'package.json',
  'package-lock.json',
  'node_modules/.package-lock.json',
];

/**
 * @typedef {object} BundleOptions
 * @property {string} [root] the project the entries are in (default: this repository)
 * @property {Record<string, string>} [entries] output name → entry file relative to root (default: COMMAND_ENTRIES)
 * @property {string} [outDir] where the bundle goes (default: <root>/node_modules/.cache/rowfleet/commands.node<N>)
 * @property {readonly string[]} [selfContained] the entries built with their packages in them (default: SELF_CONTAINED)
 */

/** @param {BundleOptions} o */
function settings(o = {}) {
  const root = resolve(o.root ?? ROOT);
  const entries = o.entries ?? COMMAND_ENTRIES;
  const selfContained = o.selfContained ?? SELF_CONTAINED;
  const outDir = resolve(
    o.outDir ?? join(root, 'node_modules', '.cache', 'rowfleet', `commands.node${DEPLOYED_MAJOR}`),
  );
  return { root, entries, selfContained, outDir, manifest: join(outDir, 'manifest.json') };
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
  return JSON.stringify({
    recipe: RECIPE,
    root: s.root,
    entries: s.entries,
    selfContained: s.selfContained,
    esbuild: esbuildVersion(),
  });
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
 * Builds the bundle (one ES module per entry, packages imported from node_modules at run time but in the
 * self-contained entries) and its manifest,
 * written last: concurrent builds are safe (each file is renamed into place; the same inputs give the same files).
 * @param {BundleOptions} [o]
 * @returns {Promise<Record<string, string>>} the entry files by name
 */
export async function buildBundle(o) {
  const s = settings(o);
  const { build } = await import('esbuild');
  const recipe = recipeOf(s);
  const byName = (names) =>
    Object.fromEntries(
      Object.entries(s.entries).flatMap(([n, f]) => (names(n) ? [[n, join(s.root, f)]] : [])),
    );
  const common = {
    absWorkingDir: s.root,
    outdir: s.outDir,
    outExtension: { '.js': '.mjs' },
    // What a process loads only when it needs it (`await import`) is a chunk of its own, loaded then: without
    // splitting, esbuild would hoist the package imports of every lazily loaded module to the entry's start.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    write: false,
    bundle: true,
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
    // `node:http` without its ES module facade, as the shipped bundles take it (config/node.ts NODE_HTTP_ALIAS): the
    // facade loads undici, 30–60 ms at the start of the command, the runtime and its function hosts (CPU profiles).
    alias: Object.fromEntries(Object.entries(NODE_HTTP_ALIAS).map(([k, v]) => [k, join(s.root, v)])),
  };
  const shared = byName((n) => !s.selfContained.includes(n));
  const results = await Promise.all([
    ...(Object.keys(shared).length > 0
      ? [
          build({
            ...common,
            entryPoints: shared,
            packages: 'external',
            plugins: [sourceLocations(s.root), nodeModulesAtRunTime(), requireCommonJs()],
          }),
        ]
      : []),
    // Each self-contained entry built on its own (its chunks are its own), its packages in it as the image's
    // worker and the functions' bundles have theirs (`module` first, as they are built).
    ...Object.entries(byName((n) => s.selfContained.includes(n))).map(([n, f]) =>
      build({
        ...common,
        entryPoints: { [n]: f },
        mainFields: ['module', 'main'],
        external: RUN_TIME_PACKAGES,
        plugins: [sourceLocations(s.root, true), nodeModulesAtRunTime()],
      }),
    ),
  ]);
  const result = {
    outputFiles: results.flatMap((r) => r.outputFiles),
    metafile: { inputs: Object.assign({}, ...results.map((r) => r.metafile.inputs)) },
  };
  // Chunks (named by their content) before the entries that import them, the manifest last.
  const files = [...result.outputFiles].sort((a, b) => Number(isChunk(b.path)) - Number(isChunk(a.path)));
  for (const f of files) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeAtomically(f.path, f.contents);
  }
  removeOldChunks(s.outDir, new Set(files.map((f) => f.path)));
  const inputs = [
    // Project files only: a `namespace:` input is made by a plugin from the specifier alone, and the packages
    // in a self-contained entry are stood for by the lock files (BUILD_INPUTS).
    ...Object.keys(result.metafile.inputs).filter(
      (f) => !/^[a-z-]+:/.test(f) && !f.split(/[\\/]/).includes('node_modules'),
    ),
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
function sourceLocations(root, packages = false) {
  return {
    name: 'rowfleet-source-locations',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
        // A package in the bundle (a self-contained entry) keeps its own import.meta.url too.
        const inPackage = args.path.includes(`${sep}node_modules${sep}`);
        if (inPackage ? !packages : !args.path.startsWith(root + sep)) return undefined;
        const text = readFileSync(args.path, 'utf8');
        // A package's file is left as it is unless it reads import.meta (most do not; some start with a `#!`).
        if (inPackage && !text.includes('import.meta')) return undefined;
        // On the first line, so the lines of the source map stay the sources'.
        const own = `const ${SOURCE_URL} = ${JSON.stringify(pathToFileURL(args.path).href)};`;
        const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js';
        return { contents: own + text, loader };
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
