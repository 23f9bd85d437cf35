import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { XrayOtlpExporter } from '../../../../core/aws/xray-exporter.ts';
import { jobAttrs, newJobTraceparent, startSpan, Tracing } from '../../../../core/shared/trace.ts';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const servers: { close(): void }[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

/** An OTLP endpoint that answers `status` and keeps what it received. */
async function endpoint(status: number) {
  const got: { headers: IncomingMessage['headers']; body: Buffer; path?: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks), path: req.url });
      res.writeHead(status, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, got };
}

/** Two finished spans of a job, as the SDK hands them to an exporter. */
async function spans() {
  const memory = new InMemorySpanExporter();
  const t = new Tracing(memory, { service: 'test' });
  const tp = newJobTraceparent();
  startSpan(t, 'rowfleet.split', tp, jobAttrs({ site: 'sakai', token: 't' })).end();
  startSpan(t, 'rowfleet.chunk', tp, jobAttrs({ site: 'sakai', token: 't' })).end();
  await t.flush();
  return memory.getFinishedSpans();
}

const credentials = () => Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' });
const exportAll = (e: XrayOtlpExporter, s: Awaited<ReturnType<typeof spans>>) =>
  new Promise<ExportResult>((r) => e.export(s, r));

describe('XrayOtlpExporter', () => {
  it('POSTs the spans as gzipped OTLP protobuf, SigV4-signed for the service xray', async () => {
    const ep = await endpoint(200);
    const exporter = new XrayOtlpExporter('ap-northeast-1', { endpoint: ep.url, credentials });

    const r = await exportAll(exporter, await spans());

    expect(r.code).toBe(ExportResultCode.SUCCESS);
    expect(ep.got).toHaveLength(1);
    const { headers, body, path } = ep.got[0]!;
    expect(path).toBe('/v1/traces');
    expect(headers['content-type']).toBe('application/x-protobuf');
    expect(headers['content-encoding']).toBe('gzip');
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/ap-northeast-1\/xray\/aws4_request, SignedHeaders=[^,]*content-encoding;content-type;host[^,]*, Signature=[0-9a-f]{64}$/,
    );
    // The span names are in the protobuf body (strings are stored as is).
    const raw = gunzipSync(body).toString('latin1');
    expect(raw).toContain('rowfleet.split');
    expect(raw).toContain('rowfleet.chunk');
  });

  it('reports a refused export as failed, never throwing into the pipeline', async () => {
    const ep = await endpoint(403);
    const exporter = new XrayOtlpExporter('ap-northeast-1', { endpoint: ep.url, credentials });

    const r = await exportAll(exporter, await spans());

    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(String(r.error)).toContain('403');
  });

  it('sends through node:http(s), never fetch (undici, ~35 ms at a cold start), and gives up on a silent endpoint', async () => {
    // Prepare: fetch watched; an endpoint that takes the request and never answers
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const ok = await endpoint(200);
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    servers.push({
      close: () => {
        silent.closeAllConnections();
        silent.close();
      },
    });
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1/traces`;

    // Act
    const sent = await exportAll(
      new XrayOtlpExporter('ap-northeast-1', { endpoint: ok.url, credentials }),
      await spans(),
    );
    const t0 = Date.now();
    const waited = await exportAll(
      new XrayOtlpExporter('ap-northeast-1', { endpoint: silentUrl, credentials, timeoutMs: 200 }),
      await spans(),
    );

    // Assess
    expect(sent.code).toBe(ExportResultCode.SUCCESS);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(waited.code).toBe(ExportResultCode.FAILED);
    expect(String(waited.error)).toContain('no answer within 200 ms');
    expect(Date.now() - t0).toBeLessThan(5000);
    fetchSpy.mockRestore();
  });
});
