#!/usr/bin/env node
/** CDK app entry: `npx cdk synth -c stage=<dev|stg|prod>` (see docs/DEPLOY.md). */
import { createRowfleetApp } from '../lib/app.ts';

try {
  createRowfleetApp().app.synth();
} catch (err) {
  process.stderr.write(`rowfleet cdk app: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
