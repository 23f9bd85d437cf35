import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type RequestListener, type Server } from 'node:http';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { buildApp } from 'fauxqs';
import dynalite from 'dynalite';
import type { Email } from 'aws-ses-v2-local/dist/store.js';
import { handlePresignedPost } from './presigned-post.ts';
import {
  guardServer,
  loopbackHost,
  sigV4Refusal,
  viewerCookie,
  viewerKeyRefusal,
  type EmulatorCredentials,
} from './emulator-gate.ts';

// aws-ses-v2-local is CommonJS with a default export.
type SesServer = (config?: { host?: string; port?: number }) => Promise<Server>;
type SesStore = typeof import('aws-ses-v2-local/dist/store.js');

/**
 * aws-ses-v2-local's request handler (its express app) and its store, loaded when the first request for SES
 * comes: loading it (express, mailparser, nodemailer) took more CPU than fauxqs and dynalite together, on the path
 * of every runtime start, and most runs send no mail. `persist` runs on the store before any request is handled.
 */
async function loadSes(persist: (store: SesStore) => void): Promise<RequestListener> {
  const [sesModule, store] = await Promise.all([
    import('aws-ses-v2-local'),
    import('aws-ses-v2-local/dist/store.js'),
  ]);
  const exported = sesModule as unknown as { default?: SesServer | { default?: SesServer } };
  const sesLocal = (
    typeof exported.default === 'function' ? exported.default : exported.default?.default
  ) as SesServer;
  const storeModule = ((store as unknown as { default?: SesStore }).default ?? store) as SesStore;
  persist(storeModule);
  // The package only offers a server listening on a port of its own: its app (the server's request listener) is
  // taken from it, and that server closed, so SES answers on the port the runtime announced at start.
  const own = await sesLocal({ host: '127.0.0.1', port: 0 });
  const app = own.listeners('request')[0] as RequestListener;
  own.close();
  return app;
}
const QUEUE_SETTINGS = [
  'VisibilityTimeout',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy',
  'DelaySeconds',
  'MaximumMessageSize',
];

// fauxqs does not export its store classes from the package root; they are plain modules in dist.
import { S3Store } from '../node_modules/fauxqs/dist/s3/s3Store.js';
import { S3Error } from '../node_modules/fauxqs/dist/common/errors.js';
import { SqsStore } from '../node_modules/fauxqs/dist/sqs/sqsStore.js';
import { SnsStore } from '../node_modules/fauxqs/dist/sns/snsStore.js';

export interface EmulatorOptions {
  /** Where S3 objects, queues and DynamoDB data persist between runs; in memory when undefined. */
  readonly stateDir?: string;
  readonly region: string;
  /**
   * The only credentials the emulators answer (local/emulator-gate.ts): the runtime's own, from its state
   * directory. The secret also checks presigned POST policies.
   */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Buckets whose `uploads/` objects raise an S3 ObjectCreated event on `eventsQueue`. */
  readonly notify?: { readonly bucket: string; readonly prefix: string; readonly queueName: string };
}

export interface Emulators {
  readonly endpoints: { readonly s3sqs: string; readonly dynamodb: string; readonly ses: string };
  stop(): Promise<void>;
}

export interface QueueStats {
  /** SQS API requests naming the queue. */
  requests: number;
  /** Billed requests: every 64 KiB chunk of a request's or response's payload counts as one. */
  billed: number;
  /** Message payload bytes sent and received. */
  payloadBytes: number;
}

const BILLING_CHUNK = 64 * 1024;

/** Counts SQS requests per queue, as AWS would bill them; served at GET /_rowfleet/sqs-stats. */
function countSqsRequests(app: ReturnType<typeof buildApp>): void {
  const stats = new Map<string, QueueStats>();
  const queueOf = (body: { QueueUrl?: string; QueueName?: string }) =>
    body.QueueName ?? body.QueueUrl?.split('/').pop();
  const entry = (q: string) => {
    let e = stats.get(q);
    if (!e) stats.set(q, (e = { requests: 0, billed: 0, payloadBytes: 0 }));
    return e;
  };
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'POST' || !String(request.headers['content-type']).includes('amz-json')) return;
    const body = (request.body ?? {}) as {
      QueueUrl?: string;
      QueueName?: string;
      MessageBody?: string;
      Entries?: { MessageBody?: string }[];
    };
    const q = queueOf(body);
    if (!q) return;
    const e = entry(q);
    const payload =
      Buffer.byteLength(body.MessageBody ?? '') +
      (body.Entries ?? []).reduce((n, x) => n + Buffer.byteLength(x.MessageBody ?? ''), 0);
    e.requests++;
    e.payloadBytes += payload;
    e.billed += Math.max(1, Math.ceil(payload / BILLING_CHUNK));
    (request as unknown as { rowfleetQueue?: string }).rowfleetQueue = String(
      request.headers['x-amz-target'],
    ).endsWith('.ReceiveMessage')
      ? q
      : undefined;
  });
  app.addHook('onSend', async (request, _reply, payload) => {
    const q = (request as unknown as { rowfleetQueue?: string }).rowfleetQueue;
    if (!q || typeof payload !== 'string') return payload;
    // A receive is billed by the payload it returns: count what goes beyond the first 64 KiB chunk.
    const bytes = Buffer.byteLength(payload);
    const e = entry(q);
    e.payloadBytes += bytes;
    e.billed += Math.max(1, Math.ceil(bytes / BILLING_CHUNK)) - 1;
    return payload;
  });
  app.get('/_rowfleet/sqs-stats', async () => Object.fromEntries(stats));
}

interface SavedQueue {
  name: string;
  attributes: Record<string, string>;
  /** The queue's tags (a job queue's site and token: the reaper keeps a queue whose job is in flight). */
  tags?: Record<string, string>;
  messages: unknown[];
}

/** Temporary files of atomic writes (never read back as objects). */
const TMP_SUFFIX = /\.rowfleet-tmp-\d+$/;
let tmpCounter = 0;

/** Writes `body` to a temporary file, then renames it into place: a killed process leaves the old or the new. */
async function writeAtomic(path: string, body: Buffer | string): Promise<void> {
  const tmp = `${path}.rowfleet-tmp-${++tmpCounter}`;
  await writeFile(tmp, body);
  await rename(tmp, path);
}

/**
 * Writes and deletes files in order per path, without blocking the emulator; `flush` waits for what was asked so
 * far (the emulator answers a write only once its file is on disk, so a kill -9 loses nothing it acknowledged).
 */
class FileWriter {
  private readonly chains = new Map<string, Promise<void>>();
  private chain(path: string, op: () => Promise<unknown>): void {
    const next = (this.chains.get(path) ?? Promise.resolve()).then(op).then(
      () => undefined,
      (err: unknown) => void process.stderr.write(`emulator: persisting ${path} failed: ${String(err)}\n`),
    );
    this.chains.set(path, next);
    void next.then(() => {
      if (this.chains.get(path) === next) this.chains.delete(path);
    });
  }
  write(path: string, body: Buffer): void {
    this.chain(path, async () => {
      await mkdir(dirname(path), { recursive: true });
      await writeAtomic(path, body);
    });
  }
  remove(path: string): void {
    this.chain(path, () => rm(path, { force: true }));
  }
  async flush(): Promise<void> {
    while (this.chains.size) await Promise.all(this.chains.values());
  }
}

interface StoredUpload {
  bucket: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  parts: Map<number, { body: Buffer; etag: string }>;
}

/**
 * fauxqs's CompleteMultipartUpload with the same checks, object and ETag (the MD5 of the parts' MD5 digests, "-N"),
 * but taking each part's digest from the ETag it got at UploadPart instead of hashing every part again: for a
 * job's zip that was a second MD5 pass over the whole archive at the end of the finalize (0.44 s of the emulator's
 * CPU profile in one `npm run bench` run at 1M records).
 */
function completeFromPartDigests(store: S3Store): S3Store['completeMultipartUpload'] {
  const internals = store as unknown as {
    multipartUploads: Map<string, StoredUpload>;
    multipartUploadsByBucket: Map<string, Set<string>>;
    buckets: Map<string, Map<string, unknown>>;
  };
  const noSuchUpload = () =>
    new S3Error(
      'NoSuchUpload',
      'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      404,
    );
  const invalidPart = () =>
    new S3Error(
      'InvalidPart',
      "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
      400,
    );
  return (uploadId, specs) => {
    const upload = internals.multipartUploads.get(uploadId);
    if (!upload) throw noSuchUpload();
    const objects = internals.buckets.get(upload.bucket);
    if (!objects)
      throw new S3Error('NoSuchBucket', `The specified bucket does not exist: ${upload.bucket}`, 404);
    for (let i = 1; i < specs.length; i++) {
      if (specs[i]!.partNumber <= specs[i - 1]!.partNumber)
        throw new S3Error(
          'InvalidPartOrder',
          'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
          400,
        );
    }
    const parts = specs.map((spec) => {
      const part = upload.parts.get(spec.partNumber);
      if (!part || spec.etag.replaceAll('"', '') !== part.etag.replaceAll('"', '')) throw invalidPart();
      return part;
    });
    if (parts.slice(0, -1).some((p) => p.body.length < S3_MIN_PART_BYTES))
      throw new S3Error(
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed size',
        400,
      );
    const body = Buffer.concat(parts.map((p) => p.body));
    const digests = Buffer.concat(parts.map((p) => Buffer.from(p.etag.replaceAll('"', ''), 'hex')));
    const obj = {
      key: upload.key,
      body,
      contentType: upload.contentType,
      contentLength: body.length,
      etag: `"${createHash('md5').update(digests).digest('hex')}-${specs.length}"`,
      lastModified: new Date(),
      metadata: upload.metadata,
    };
    objects.set(upload.key, obj);
    internals.multipartUploads.delete(uploadId);
    internals.multipartUploadsByBucket.get(upload.bucket)?.delete(uploadId);
    return obj;
  };
}

/** S3 requires every part but the last to be 5 MiB or more (checked at CompleteMultipartUpload, as S3 does). */
const S3_MIN_PART_BYTES = 5 * 1024 * 1024;

/** S3 store that writes through to the state directory and raises S3 events for new uploads. */
function persistentS3Store(
  root: string | undefined,
  files: FileWriter,
  onCreated: (bucket: string, key: string, size: number) => void,
): S3Store {
  const store = new S3Store();
  const file = (bucket: string, key: string) => {
    const p = resolve(root!, bucket, key);
    if (!p.startsWith(resolve(root!, bucket) + sep))
      throw new Error(`refusing key outside the bucket: ${key}`);
    return p;
  };
  const put = store.putObject.bind(store);
  store.putObject = (bucket, key, body, contentType, metadata) => {
    const obj = put(bucket, key, body, contentType, metadata);
    if (root) files.write(file(bucket, key), body);
    onCreated(bucket, key, body.length);
    return obj;
  };
  const complete = completeFromPartDigests(store);
  store.completeMultipartUpload = (uploadId, parts) => {
    const upload = (
      store as unknown as { multipartUploads: Map<string, { bucket: string; key: string }> }
    ).multipartUploads.get(uploadId);
    const obj = complete(uploadId, parts);
    if (upload) {
      if (root) files.write(file(upload.bucket, upload.key), obj.body);
      onCreated(upload.bucket, upload.key, obj.body.length);
    }
    return obj;
  };
  const del = store.deleteObject.bind(store);
  store.deleteObject = (bucket, key) => {
    del(bucket, key);
    if (root) files.remove(file(bucket, key));
  };
  if (root && existsSync(root)) {
    for (const bucket of readdirSync(root)) {
      store.createBucket(bucket);
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const p = join(dir, name);
          if (statSync(p).isDirectory()) walk(p);
          else if (!TMP_SUFFIX.test(name))
            put(bucket, relative(join(root, bucket), p).split(sep).join('/'), readFileSync(p));
        }
      };
      walk(join(root, bucket));
    }
  }
  return store;
}

/** A mail the embedded SES took, as kept in the state dir: the emulator's record and when it arrived (ms). */
export type StoredMail = Email & { readonly atMs?: number };

/**
 * Keeps the embedded SES's mails in `<dir>/ses-mails.ndjson` (one JSON line per mail, appended before the
 * emulator answers, so a mail it acknowledged survives a kill -9) and loads them back on start, so
 * `rowfleet mail list` sees the mails of earlier commands. Returns the close.
 */
function persistSesMails(sesStore: SesStore, dir: string): () => Promise<void> {
  const file = join(dir, 'ses-mails.ndjson');
  mkdirSync(dir, { recursive: true });
  const store = sesStore.getStoreReadonly();
  if (existsSync(file) && store.emails.length === 0) {
    for (const line of readFileSync(file, 'utf8').split('\n'))
      if (line) store.emails.push(JSON.parse(line) as Email);
  }
  // The emulator's handlers call saveEmail through its (CommonJS) module's exports: replaced there, it sees
  // every mail.
  const exports = sesStore as { saveEmail: (email: Email) => void };
  const save = exports.saveEmail;
  exports.saveEmail = (email: Email) => {
    Object.assign(email, { atMs: Date.now() });
    save(email);
    appendFileSync(file, JSON.stringify(email) + '\n');
  };
  return async () => {
    exports.saveEmail = save;
  };
}

/**
 * SQS actions that change what a restart must find, answered only once saved (receives and visibility changes are
 * not saved: a restart delivers again).
 */
const SQS_CHANGES =
  /\.(CreateQueue|DeleteQueue|TagQueue|UntagQueue|SetQueueAttributes|SendMessage|SendMessageBatch|PurgeQueue)$/;
/** Deletes are saved soon after, not awaited: a delete lost to a kill -9 is a redelivery, which counts nothing twice. */
const SQS_DELETES = /\.(DeleteMessage|DeleteMessageBatch)$/;
const DELETE_SAVE_DELAY_MS = 500;

/** The queues (attributes, tags, messages) as saved in the state directory. */
function queueSnapshot(sqsStore: SqsStore): string {
  const saved: SavedQueue[] = sqsStore.listQueues().map((q) => {
    const m = q.inspectMessages();
    return {
      name: q.name,
      attributes: Object.fromEntries(
        Object.entries(q.getAllAttributes(['All'])).filter(([k]) => QUEUE_SETTINGS.includes(k)),
      ),
      tags: Object.fromEntries(q.tags),
      messages: [...m.ready, ...m.delayed, ...m.inflight.map((i) => i.message)],
    };
  });
  return JSON.stringify(saved);
}

/**
 * Saves the queues after every change, grouped: a caller waits for a snapshot taken after its change, and the
 * changes that arrive while one is written share the next one.
 */
function queueSaver(file: string | undefined, sqsStore: SqsStore): () => Promise<void> {
  let current: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const write = () => {
    const p = file ? writeAtomic(file, queueSnapshot(sqsStore)) : Promise.resolve();
    current = p.finally(() => (current = undefined));
    return current;
  };
  return () => {
    if (next) return next;
    if (!current) return write();
    next = current.then(
      () => ((next = undefined), write()),
      () => ((next = undefined), write()),
    );
    return next;
  };
}

/**
 * The embedded bucket's CORS rule for presigned POSTs from a browser: what AWS answers with the stage bucket's rule
 * (POST from the console's origin, any header), for any loopback origin — the console is served by the local API,
 * on a port the emulator does not know when it starts, and nothing but this machine reaches the emulator. Other
 * origins get no CORS headers (the browser refuses the upload), as from a bucket without a matching rule.
 */
export function corsHeaders(origin: string | string[] | undefined): Record<string, string> | undefined {
  if (typeof origin !== 'string') return undefined;
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return undefined;
  }
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) return undefined;
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

/** The embedded SES's own web view and its JSON API (not AWS's): opened with the viewer key. */
const SES_WEB = new Set(['/', '/store', '/get-emlContent', '/clear-store', '/health-check']);

const portOf = (server: { address(): AddressInfo | string | null }) =>
  (server.address() as AddressInfo | null)?.port ?? -1;

/**
 * Starts the embedded AWS emulators in this process: fauxqs (SQS + S3) with S3 POST uploads and S3 event
 * notifications added, dynalite (DynamoDB), aws-ses-v2-local (SES v2). Each listens on a free port.
 */
export async function startEmulators(o: EmulatorOptions): Promise<Emulators> {
  const s3Root = o.stateDir ? join(o.stateDir, 's3') : undefined;
  const queuesFile = o.stateDir ? join(o.stateDir, 'queues.json') : undefined;
  const sqsStore = new SqsStore();
  const files = new FileWriter();
  const saveQueues = queueSaver(queuesFile, sqsStore);
  let deleteSave: NodeJS.Timeout | undefined;
  const saveSoon = () => {
    deleteSave ??= setTimeout(() => {
      deleteSave = undefined;
      void saveQueues().catch(() => undefined);
    }, DELETE_SAVE_DELAY_MS);
  };
  const s3Store = persistentS3Store(s3Root, files, (bucket, key, size) => {
    const n = o.notify;
    if (!n || bucket !== n.bucket || !key.startsWith(n.prefix)) return;
    const q = sqsStore.getQueueByName(n.queueName);
    if (!q) return;
    const event = {
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: o.region,
          eventTime: new Date().toISOString(),
          eventName: 'ObjectCreated:Post',
          s3: {
            bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
            object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size },
          },
        },
      ],
    };
    q.enqueue(SqsStore.createMessage(JSON.stringify(event)));
  });
  const app = buildApp({
    logger: false,
    defaultRegion: o.region,
    stores: { sqsStore, s3Store, snsStore: new SnsStore() },
  });
  app.addHook('onRequest', async (request, reply) => {
    const ct = request.headers['content-type'] ?? '';
    const m = /^\/([^/?]+)\/?(\?.*)?$/.exec(request.url);
    const cors = corsHeaders(request.headers.origin);
    // The bucket's CORS rule (lib/rowfleet-stack.ts on AWS): a browser's preflight of a presigned POST.
    if (request.method === 'OPTIONS' && m) {
      if (!cors) return reply.status(403).send();
      const asked = request.headers['access-control-request-headers'];
      return reply
        .status(204)
        .headers({
          ...cors,
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': typeof asked === 'string' && asked ? asked : '*',
          'access-control-max-age': '3600',
        })
        .send();
    }
    if (request.method !== 'POST' || !ct.startsWith('multipart/form-data') || !m) return;
    const bucket = decodeURIComponent(m[1]!);
    const r = await handlePresignedPost(request.raw, bucket, o.secretAccessKey, (key, body, contentType) =>
      s3Store.putObject(bucket, key, body, contentType),
    );
    return reply
      .status(r.status)
      .headers({ 'content-type': 'application/xml', ...(cors ?? {}) })
      .send(r.body);
  });
  countSqsRequests(app);
  // Nothing is acknowledged before it is on disk: a write to S3 (and the event it raises), a queue change.
  app.addHook('onSend', async (request, _reply, payload) => {
    if (!o.stateDir || request.method === 'GET' || request.method === 'HEAD') return payload;
    const target = request.headers['x-amz-target'];
    if (typeof target === 'string') {
      if (SQS_CHANGES.test(target)) await saveQueues();
      else if (SQS_DELETES.test(target)) saveSoon();
      return payload;
    }
    await Promise.all([files.flush(), saveQueues()]);
    return payload;
  });
  const credentials: EmulatorCredentials = { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey };
  guardServer(app.server, (req) => {
    const m = /^\/([^/?]+)\/?(\?.*)?$/.exec(req.url ?? '');
    if (!loopbackHost(req.headers.host, portOf(app.server))) return 'Host is not this emulator on loopback';
    // A browser's CORS preflight carries no credentials (it is answered with CORS headers only).
    if (req.method === 'OPTIONS' && m) return undefined;
    // A presigned POST is checked against its signed policy (presigned-post.ts).
    if (req.method === 'POST' && m && (req.headers['content-type'] ?? '').startsWith('multipart/form-data'))
      return undefined;
    if ((req.url ?? '').startsWith('/_rowfleet/'))
      return viewerKeyRefusal(req, credentials, portOf(app.server));
    return sigV4Refusal(req, credentials);
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const port = Number(new URL(address).port);

  // Restore queues (with their messages) saved by the previous run.
  if (queuesFile && existsSync(queuesFile)) {
    const saved = JSON.parse(readFileSync(queuesFile, 'utf8')) as SavedQueue[];
    for (const s of saved) {
      const url = sqsStore.buildQueueUrl(s.name, String(port), `127.0.0.1:${port}`, o.region);
      const q = sqsStore.createQueue(
        s.name,
        url,
        `arn:aws:sqs:${o.region}:000000000000:${s.name}`,
        s.attributes,
        s.tags,
      );
      for (const m of s.messages) q.enqueue(m as Parameters<typeof q.enqueue>[0]);
    }
  }

  const ddbDir = o.stateDir ? join(o.stateDir, 'dynamodb') : undefined;
  if (ddbDir) mkdirSync(ddbDir, { recursive: true });
  const ddb = dynalite({ path: ddbDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  guardServer(ddb, (req) =>
    loopbackHost(req.headers.host, portOf(ddb))
      ? sigV4Refusal(req, credentials)
      : 'Host is not this emulator on loopback',
  );
  await new Promise<void>((r) => ddb.listen(0, '127.0.0.1', () => r()));
  let closeMails: (() => Promise<void>) | undefined;
  let sesApp: Promise<RequestListener> | undefined;
  const stateDir = o.stateDir;
  const sesHandler = () =>
    (sesApp ??= loadSes((store) => {
      if (stateDir) closeMails = persistSesMails(store, stateDir);
    }));
  const ses: Server = createServer((req, res) => {
    sesHandler().then(
      (app) => app(req, res),
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `the embedded SES could not load: ${String(err)}` }));
      },
    );
  });
  await new Promise<void>((r) => ses.listen(0, '127.0.0.1', () => r()));
  // Node closes an idle keep-alive connection after 5 s: a client sending on it just then gets a reset, and a
  // bulk mail with no answer is IN_DOUBT. Idle connections live a minute here, as on AWS's load balancers.
  ses.keepAliveTimeout = 60_000;
  ses.headersTimeout = 61_000;
  guardServer(ses, (req, res) => {
    const port = portOf(ses);
    if (!loopbackHost(req.headers.host, port)) return 'Host is not this emulator on loopback';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!SES_WEB.has(path)) return sigV4Refusal(req, credentials);
    const refusal = viewerKeyRefusal(req, credentials, port);
    // The viewer opened with ?key= keeps it in a cookie for its own requests (its store, a download).
    if (!refusal && path === '/') res.setHeader('set-cookie', viewerCookie(credentials, port));
    return refusal;
  });

  const url = (s: { address(): AddressInfo | string | null }) =>
    `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    endpoints: { s3sqs: `http://127.0.0.1:${port}`, dynamodb: url(ddb), ses: url(ses) },
    async stop() {
      clearTimeout(deleteSave);
      if (queuesFile) writeFileSync(queuesFile, queueSnapshot(sqsStore));
      await app.close();
      await files.flush();
      await new Promise<void>((r) => ddb.close(() => r()));
      await new Promise<void>((r) => ses.close(() => r()));
      await sesApp?.catch(() => undefined);
      await closeMails?.();
    },
  };
}
