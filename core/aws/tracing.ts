import { JobFileExporter } from '../shared/trace-file.ts';
import { Tracing } from '../shared/trace.ts';
import { XrayOtlpExporter } from './xray-exporter.ts';
import { recordAwsCall } from './aws-calls.ts';
import { ENV } from '../../config/env.ts';

/**
 * The process's tracing, from the environment (once per process; every deps built in it shares it):
 * - `ROWFLEET_TRACING=otlp` (the CDK stack sets it on the functions and the worker task that emit spans): OTLP to
 *   the region's X-Ray endpoint (`ROWFLEET_TRACING_ENDPOINT` overrides the URL);
 * - `ROWFLEET_TRACING=file` with `ROWFLEET_TRACE_DIR` (the local runtime sets both for every process it runs):
 *   the local span store;
 * - unset or `off` (tests, `npm run bench` with tracing switched off): none — every span is a no-op.
 */
export function tracingFromEnv(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  const mode = env[ENV.tracing] ?? 'off';
  if (mode === 'off' || mode === '') return undefined;
  const key = `${mode}|${env[ENV.traceDir] ?? ''}|${env[ENV.tracingEndpoint] ?? ''}`;
  if (cached?.key === key) return cached.tracing;
  const exporter =
    mode === 'file'
      ? new JobFileExporter(required(env, ENV.traceDir))
      : mode === 'otlp'
        ? new XrayOtlpExporter(required(env, 'AWS_REGION'), {
            ...(env[ENV.tracingEndpoint] ? { endpoint: env[ENV.tracingEndpoint] } : {}),
          })
        : undefined;
  if (!exporter) throw new Error(`${ENV.tracing} must be otlp, file or off, not "${mode}"`);
  const kind =
    env[ENV.functionName] ?? env.AWS_LAMBDA_FUNCTION_NAME ?? (env[ENV.jobToken] ? 'worker' : 'local-runtime');
  const tracing = new Tracing(exporter, {
    service: `rowfleet-${env[ENV.stage] ?? 'unknown'}`,
    processKind: kind,
    // On AWS the process that records a span exports it (OTLP to X-Ray, authorized as xray:PutTraceSegments, which
    // has no resource-level permission): test/infra/iam.test.ts checks that grant against the roles that do.
    onSpan: () => recordAwsCall({ action: 'xray:PutTraceSegments', resource: '*' }),
  });
  cached = { key, tracing };
  return tracing;
}

let cached: { key: string; tracing: Tracing } | undefined;

/** Exports this process's pending spans, bounded (the end of a Lambda invocation: the sandbox may freeze next). */
export async function flushTracing(ms: number): Promise<void> {
  await cached?.tracing.flush(ms);
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`${ENV.tracing}=${env[ENV.tracing]} needs ${name}`);
  return v;
}
