#!/usr/bin/env node
// The `rowfleet` command: runs the TypeScript CLI through tsx, so it works right after `npm ci`, on the Node the
// functions deploy on (scripts/deployed-node.mjs runs it again on that one when this Node is older).
import { register } from 'tsx/esm/api';
import { onDeployedNode } from './deployed-node.mjs';

await onDeployedNode();

// The SDK's notice about its future Node 22 requirement is for us, not for every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Handlers log JSON for CloudWatch; in a terminal only warnings and errors are worth showing.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
register();
await import('./cli.ts');
