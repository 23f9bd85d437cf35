/** Types of cli/command-bundle.mjs (plain JavaScript: it runs before any TypeScript loader). */
export interface BundleOptions {
  readonly root?: string;
  readonly entries?: Record<string, string>;
  readonly outDir?: string;
  readonly selfContained?: readonly string[];
}
export declare const COMMAND_ENTRIES: Record<string, string>;
export declare const SELF_CONTAINED: readonly string[];
export declare function currentBundle(o?: BundleOptions): Record<string, string> | undefined;
export declare function buildBundle(o?: BundleOptions): Promise<Record<string, string>>;
export declare function commandBundle(o?: BundleOptions): Promise<Record<string, string> | undefined>;
export declare function removeBundle(o?: BundleOptions): void;
export declare function bundleDir(o?: BundleOptions): string;
export { REQUIRE_BANNER, requireCommonJs } from '../local/esbuild-commonjs.mjs';
