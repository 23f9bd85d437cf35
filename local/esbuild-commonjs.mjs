// An esbuild plugin for the local bundles that import their packages from node_modules at run time
// (cli/command-bundle.mjs: the command, the runtime, the emulator host; the worker's bundle has its packages in it
// and takes only the banner, local/launcher.ts). Plain JavaScript: the
// command's bundler runs before any TypeScript loader.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lets the bundle `require` (below); the same banner the functions' bundles carry (lib/rowfleet-function.ts). */
export const REQUIRE_BANNER =
  "import { createRequire as __rowfleetCreateRequire } from 'node:module'; const require = __rowfleetCreateRequire(import.meta.url);";

/**
 * Whether Node would have to guess a package's module format when the bundle imports it: its entry for `import` is a
 * `.js` file in a package that names no `type`. Node then compiles the file once more to look for ES module syntax
 * before loading it as CommonJS — for the AWS SDK's clients, a third of a worker's start (0.38 s of CPU in a
 * profile of a local worker; every SDK client's entry is one large file).
 */
function guessedFormat(spec) {
  let file;
  try {
    file = fileURLToPath(import.meta.resolve(spec));
  } catch {
    return false;
  }
  if (!file.endsWith('.js')) return false;
  // The nearest package.json is the file's package scope, as Node sees it: its `type` decides, when it has one.
  for (
    let dir = dirname(file);
    dir !== dirname(dir) && !dir.endsWith(`${sep}node_modules`);
    dir = dirname(dir)
  ) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) return JSON.parse(readFileSync(pkg, 'utf8')).type === undefined;
  }
  return true;
}

const CJS = 'rowfleet-commonjs';

/**
 * Packages whose format Node would guess (see {@link guessedFormat}) are loaded with `require` (needs
 * {@link REQUIRE_BANNER}): what Node does anyway once it has guessed, without the guess. Named imports from them
 * work as they do from the sources (esbuild's CommonJS interop, in Node's mode: `default` is `module.exports`).
 */
export function requireCommonJs() {
  const decided = new Map();
  return {
    name: 'rowfleet-require-commonjs',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.namespace === CJS) return { path: args.path, external: true };
        // Static imports only: a split bundle's `await import()` of a CommonJS module would see only its `default`
        // (Node's own import also finds its named exports), so those stay imports.
        if (args.path.startsWith('node:') || args.kind !== 'import-statement') return undefined;
        let guessed = decided.get(args.path);
        if (guessed === undefined) decided.set(args.path, (guessed = guessedFormat(args.path)));
        return guessed ? { path: args.path, namespace: CJS } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: CJS }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
    },
  };
}
