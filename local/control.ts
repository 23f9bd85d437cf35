/**
 * The local runtime's control endpoint (127.0.0.1, a secret from the owner file): commands of the same state
 * directory attach to the runtime here instead of starting their own, and launch workers through it.
 *
 * - `GET /attach`: the answer stays open while the command is attached. A command that exits or is killed
 *   (kill -9 included) closes it, so the runtime always knows who uses it.
 * - `POST /detach?id=`: detaches at once; answers how many commands remain attached.
 * - `POST /launch`, `POST /stop`, `GET /tasks`: the runtime's TaskLauncher (workers are its child processes).
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LaunchFailedError, type LaunchRequest, type TaskLauncher } from '../core/aws/task-launcher.ts';
import { errorMessage } from '../core/shared/errors.ts';

export class ControlServer {
  private server?: Server;
  private readonly clients = new Map<string, ServerResponse>();
  private closing = false;
  readonly secret = randomUUID();
  url = '';

  constructor(
    private readonly launcher: TaskLauncher,
    /** Called whenever the number of attached commands changes. */
    private readonly onClients: (count: number) => void = () => undefined,
  ) {}

  get attached(): number {
    return this.clients.size;
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, { error: errorMessage(err) }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Refuses new attachments (the runtime is stopping); the ones attached stay until they go. */
  refuseAttach(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const res of this.clients.values()) res.end();
    this.clients.clear();
    this.server?.closeAllConnections();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const given = Buffer.from(req.headers['x-rowfleet-secret']?.toString() ?? '');
    const secret = Buffer.from(this.secret);
    if (given.length !== secret.length || !timingSafeEqual(given, secret)) return send(res, 403, {});
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /attach') return this.attach(url.searchParams.get('id') ?? randomUUID(), req, res);
    if (route === 'POST /detach') {
      this.detach(url.searchParams.get('id') ?? '');
      return send(res, 200, { remaining: this.clients.size });
    }
    if (route === 'POST /launch') {
      const r = JSON.parse(await body(req)) as LaunchRequest;
      try {
        return send(res, 200, { started: await this.launcher.launch(r) });
      } catch (err) {
        const started = err instanceof LaunchFailedError ? err.started : [];
        return send(res, 200, { started, failed: r.count - started.length, error: errorMessage(err) });
      }
    }
    if (route === 'POST /stop') {
      const r = JSON.parse(await body(req)) as { site: string; token: string };
      return send(res, 200, { stopped: await this.launcher.stop(r.site, r.token) });
    }
    if (route === 'GET /tasks') return send(res, 200, { tasks: await this.launcher.list() });
    send(res, 404, {});
  }

  private attach(id: string, req: IncomingMessage, res: ServerResponse): void {
    if (this.closing) return send(res, 503, { error: 'the runtime is stopping' });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write(JSON.stringify({ attached: id }) + '\n');
    this.clients.set(id, res);
    this.onClients(this.clients.size);
    req.socket.setKeepAlive(true, 1000);
    res.once('close', () => this.detach(id));
  }

  private detach(id: string): void {
    const res = this.clients.get(id);
    if (!res) return;
    this.clients.delete(id);
    res.end();
    this.onClients(this.clients.size);
  }
}

function send(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function body(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
