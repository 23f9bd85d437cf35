import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import type { App } from 'aws-cdk-lib';
import { createRowfleetApp, type RowfleetAppOptions } from '../../lib/app.ts';
import type { FunctionName, RowfleetStack } from '../../lib/rowfleet-stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The feature flags of cdk.json, so that tests synthesize exactly what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

export interface Synthesized {
  readonly app: App;
  readonly stack: RowfleetStack;
  readonly template: Template;
  readonly outdir: string;
  readonly cleanup: () => void;
}

/**
 * Synthesizes one stage's stack (cdk-nag included, as in bin/) into a temporary directory. Without `bundle`,
 * the Lambda code is not bundled (CDK's `aws:cdk:bundling-stacks` context), which keeps template tests fast.
 */
export function synthStage(
  stage = 'dev',
  options: { readonly bundle?: boolean; readonly infra?: RowfleetAppOptions['infra'] } = {},
): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'rowfleet-cdk-'));
  const context: Record<string, unknown> = { ...cdkJsonContext() };
  if (!options.bundle) context['aws:cdk:bundling-stacks'] = [];
  const { app, stack } = createRowfleetApp({
    stage,
    appProps: { outdir, context },
    env: { CDK_DEFAULT_ACCOUNT: '123456789012', CDK_DEFAULT_REGION: 'ap-northeast-1' },
    ...(options.infra ? { infra: options.infra } : {}),
  });
  app.synth();
  return {
    app,
    stack,
    template: Template.fromStack(stack),
    outdir,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/** Concatenates the string parts of an Fn::Join (tokens become "<ref>"), e.g. a dashboard body. */
export function joinedText(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) return '<ref>';
  return join[1].map(joinedText).join(join[0]);
}

/** The directory of a function's bundled code in the cloud assembly (via the assets manifest). */
export function bundleDir(s: Synthesized, name: FunctionName): string {
  const fn = s.stack.functions[name];
  const code = s.template.toJSON().Resources[s.stack.getLogicalId(fn.node.defaultChild as never)].Properties
    .Code as {
    S3Key: string;
  };
  const manifest = JSON.parse(readFileSync(join(s.outdir, `${s.stack.artifactId}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string } }>;
  };
  const asset = manifest.files[code.S3Key.replace(/\.zip$/, '')];
  if (!asset) throw new Error(`no asset for ${name} (${code.S3Key})`);
  return join(s.outdir, asset.source.path);
}
