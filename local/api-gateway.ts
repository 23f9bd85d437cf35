import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { isBinaryMediaType } from '../config/routes.ts';

/** API Gateway's own payload limit: bodies above it never reach a Lambda. */
const API_GATEWAY_MAX_BODY = 10 * 1024 * 1024;

export interface Route {
  readonly method: string;
  readonly resource: string;
  readonly handler: (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult | undefined>;
  readonly auth: boolean;
}

function match(resource: string, path: string): Record<string, string> | undefined {
  const r = resource.split('/');
  const p = path.split('/');
  if (r.length !== p.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < r.length; i++) {
    const seg = r[i]!;
    if (seg.startsWith('{') && seg.endsWith('}')) params[seg.slice(1, -1)] = decodePathPart(p[i]!);
    else if (seg !== p[i]) return undefined;
  }
  return params;
}

/** A path segment decoded as API Gateway does; malformed percent-encoding is the caller's error (400). */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new MalformedPath(part);
  }
}

class MalformedPath extends Error {}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > API_GATEWAY_MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The local API Gateway (REST, proxy integration): authenticates the bearer token with the same code as the
 * Lambda authorizer, then invokes the real handlers with REST proxy events.
 */
export class LocalApi {
  private server?: Server;
  url = '';

  constructor(
    private readonly routes: readonly Route[],
    private readonly authenticate: (authorization: string | undefined) => Promise<string | undefined>,
    private readonly stage: string,
    /** Answers requests it serves itself (the web console's files) before the routes; false for the others. */
    private readonly serveStatic?: (req: IncomingMessage, res: ServerResponse) => boolean,
  ) {}

  async listen(port = 0): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INTERNAL', message: String(err) } }));
      });
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.serveStatic?.(req, res)) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (r: APIGatewayProxyResult) => {
      res.writeHead(r.statusCode, (r.headers ?? {}) as Record<string, string>);
      res.end(r.isBase64Encoded ? Buffer.from(r.body, 'base64') : r.body);
    };
    for (const route of this.routes) {
      if (route.method !== req.method) continue;
      let params: Record<string, string> | undefined;
      try {
        params = match(route.resource, url.pathname);
      } catch (err) {
        if (!(err instanceof MalformedPath)) throw err;
        return send({
          statusCode: 400,
          body: JSON.stringify({
            error: { code: 'INVALID_REQUEST', message: 'Malformed percent-encoding in the path.' },
          }),
        });
      }
      if (!params) continue;
      const body = await readBody(req);
      if (!body) {
        // Like API Gateway: refuse, and close the connection rather than read the rest of the body.
        res.setHeader('connection', 'close');
        res.once('finish', () => req.destroy());
        return send({
          statusCode: 413,
          body: JSON.stringify({
            error: {
              code: 'PAYLOAD_TOO_LARGE',
              message: 'Request Too Long: use POST /uploads for large files.',
            },
          }),
        });
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
      );
      let site: string | undefined;
      if (route.auth) {
        site = await this.authenticate(headers.authorization);
        if (!site) return send({ statusCode: 401, body: JSON.stringify({ message: 'Unauthorized' }) });
      }
      const binary = isBinaryMediaType(headers['content-type']);
      const event = {
        resource: route.resource,
        path: url.pathname,
        httpMethod: route.method,
        headers,
        multiValueHeaders: {},
        queryStringParameters: url.searchParams.size ? Object.fromEntries(url.searchParams) : null,
        multiValueQueryStringParameters: null,
        pathParameters: Object.keys(params).length ? params : null,
        stageVariables: null,
        body: body.length ? body.toString(binary ? 'base64' : 'utf8') : null,
        isBase64Encoded: body.length > 0 && binary,
        requestContext: {
          resourcePath: route.resource,
          httpMethod: route.method,
          path: `/${this.stage}${url.pathname}`,
          stage: this.stage,
          requestId: randomUUID(),
          authorizer: site ? { site, principalId: `site:${site}` } : null,
        },
      } as unknown as APIGatewayProxyEvent;
      const r = await route.handler(event);
      return send(r ?? { statusCode: 204, body: '' });
    }
    send({ statusCode: 404, body: JSON.stringify({ message: 'Missing Authentication Token' }) });
  }
}
