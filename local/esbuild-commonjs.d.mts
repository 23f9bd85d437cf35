/** Types of local/esbuild-commonjs.mjs. */
export declare const REQUIRE_BANNER: string;
export declare function requireCommonJs(): import('esbuild').Plugin;
