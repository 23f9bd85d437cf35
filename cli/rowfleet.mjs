#!/usr/bin/env node
// The `rowfleet` command, on the Node the functions deploy on (cli/deployed-node.mjs runs it again on that one
// when this Node is older). It runs the CLI from its prebuilt bundle (cli/command-bundle.mjs: built on first
// use and whenever a source changed), so no TypeScript is compiled at start; when the bundle cannot be built (no
// esbuild, a source that does not build) it runs the TypeScript sources through tsx, as it always could.
import { pathToFileURL } from 'node:url';
import module from 'node:module';
import { join } from 'node:path';
import { bundleDir, commandBundle } from './command-bundle.mjs';
import { onDeployedNode } from './deployed-node.mjs';

await onDeployedNode();

// The SDK's notice about its future Node 22 requirement is for us, not for every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Handlers log JSON for CloudWatch; in a terminal only warnings and errors are worth showing.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

// V8's compiled code of every module, kept between runs (Node checks it against each file's content): this
// process and the ones it starts (the runtime, the emulators, the workers: the variable is inherited) skip most of
// the compiling of the AWS SDK at each start.
process.env.NODE_COMPILE_CACHE ??= join(bundleDir(), '..', 'compile-cache');
module.enableCompileCache?.(process.env.NODE_COMPILE_CACHE);

const bundle = await commandBundle();
if (bundle) {
  await import(pathToFileURL(bundle.cli).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
