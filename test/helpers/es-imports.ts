/** The modules a bundle imports with a static ES `import` (what Node links, and builds a facade for, before it runs). */
export function esImportsOf(code: string): string[] {
  return [...code.matchAll(/(?:^|[;}\s])import\s*(?:[\w$*{][^'"]*?\bfrom\s*)?["']([^"']+)["']/g)].map(
    (m) => m[1]!,
  );
}

/**
 * The static ES imports of `node:http` in a bundle: each builds the module's ES facade, which loads undici (30–60 ms
 * at a start); the bundles take it from config/node-http.cjs instead (config/node.ts NODE_HTTP_ALIAS).
 */
export function httpEsImportsOf(code: string): string[] {
  return esImportsOf(code).filter((m) => m === 'http' || m === 'node:http');
}
