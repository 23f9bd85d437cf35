import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { logger } from '../shared/log.ts';
import { sigV4Signer } from './sigv4.ts';

/**
 * Spans to the region's X-Ray OTLP endpoint (`https://xray.<region>.amazonaws.com/v1/traces`, CloudWatch
 * Transaction Search): OTLP/HTTP protobuf, gzip, signed with SigV4 for the service `xray` — authorized as
 * `xray:PutTraceSegments`, which the stack grants to the functions and the worker task role that emit spans.
 * Direct from our own SDK: no ADOT layer (it hot-patches CommonJS handlers; ours are ESM bundles) and no collector
 * sidecar. A failed export is logged and dropped: tracing never fails a job.
 */
export class XrayOtlpExporter implements SpanExporter {
  private readonly url: URL;
  private readonly signer: SignatureV4;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly timeoutMs: number;

  constructor(
    region: string,
    o: {
      readonly endpoint?: string;
      readonly credentials?: AwsCredentialIdentityProvider;
      /** How long an export may take, from its request to its answer's last byte. @default 5000 */
      readonly timeoutMs?: number;
    } = {},
  ) {
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.url = new URL(o.endpoint ?? `https://xray.${region}.amazonaws.com/v1/traces`);
    this.signer = sigV4Signer({
      service: 'xray',
      region,
      // The SDK's default chain (the Lambda's or the task role's credentials), resolved as any client does.
      credentials: o.credentials ?? new DynamoDBClient({ region }).config.credentials,
    });
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const p = this.send(spans).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (error: unknown) => {
        logger.warn('trace export failed; spans dropped', { spans: spans.length, error: error as Error });
        done({ code: ExportResultCode.FAILED, error: error as Error });
      },
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async send(spans: ReadableSpan[]): Promise<void> {
    const raw = ProtobufTraceSerializer.serializeRequest(spans);
    if (!raw) throw new Error('spans could not be serialized');
    // Signed after compressing: the signature covers the bytes sent.
    const body = gzipSync(raw);
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      ...(this.url.port ? { port: Number(this.url.port) } : {}),
      path: this.url.pathname,
      query: {},
      headers: {
        host: this.url.host,
        'content-type': 'application/x-protobuf',
        'content-encoding': 'gzip',
      },
      body,
    });
    const r = await post(this.url, signed.headers, body, this.timeoutMs);
    if (r.status < 200 || r.status > 299)
      throw new Error(`${this.url.host} answered ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`);
    const answer = ProtobufTraceSerializer.deserializeResponse(new Uint8Array(r.body));
    const rejected = Number(answer.partialSuccess?.rejectedSpans ?? 0);
    if (rejected > 0)
      logger.warn('trace export: spans rejected', { rejected, message: answer.partialSuccess?.errorMessage });
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.pending);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
  }
}

/**
 * POSTs `body` through node:http(s), not `fetch`: fetch is undici, which a function would load for its first export
 * (~35 ms at a cold start on Node 24; config/node-http.cjs keeps the SDK from loading it at start).
 */
function post(
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
  timeoutMs: number,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`${url.host}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
