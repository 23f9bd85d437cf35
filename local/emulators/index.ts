/**
 * The embedded AWS emulators, started in one process: fauxqs (SQS + S3, sqs.ts and s3.ts), dynalite (DynamoDB,
 * dynamodb.ts), aws-ses-v2-local (SES v2, ses.ts), each behind the emulator gate (../emulator-gate.ts) and
 * persisted in the state directory (persistence.ts).
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildApp } from 'fauxqs';
import {
  guardServer,
  loopbackHost,
  portOf,
  sigV4Refusal,
  viewerKeyRefusal,
  type EmulatorCredentials,
} from '../emulator-gate.ts';
import { FileWriter } from './persistence.ts';
import { countSqsRequests, QueuePersistence } from './sqs.ts';
import { objectCreatedEvent, persistentS3Store, serveConditionalPuts, servePostUploads } from './s3.ts';
import { startDynamo } from './dynamodb.ts';
import { startSes } from './ses.ts';

// fauxqs does not export its store classes from the package root; they are plain modules in dist.
import { SqsStore } from '../../node_modules/fauxqs/dist/sqs/sqsStore.js';
import { SnsStore } from '../../node_modules/fauxqs/dist/sns/snsStore.js';

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

/**
 * Starts the embedded AWS emulators in this process: fauxqs (SQS + S3) with S3 POST uploads and S3 event
 * notifications added, dynalite (DynamoDB), aws-ses-v2-local (SES v2). Each listens on a free port.
 */
export async function startEmulators(o: EmulatorOptions): Promise<Emulators> {
  const s3Root = o.stateDir ? join(o.stateDir, 's3') : undefined;
  const queuesFile = o.stateDir ? join(o.stateDir, 'queues.json') : undefined;
  const sqsStore = new SqsStore();
  const files = new FileWriter();
  const queues = new QueuePersistence(queuesFile, sqsStore);
  const s3Store = persistentS3Store(s3Root, files, (bucket, key, size) => {
    const n = o.notify;
    if (!n || bucket !== n.bucket || !key.startsWith(n.prefix)) return;
    const q = sqsStore.getQueueByName(n.queueName);
    if (!q) return;
    q.enqueue(SqsStore.createMessage(JSON.stringify(objectCreatedEvent(o.region, bucket, key, size))));
  });
  const app = buildApp({
    logger: false,
    defaultRegion: o.region,
    stores: { sqsStore, s3Store, snsStore: new SnsStore() },
  });
  servePostUploads(app, s3Store, o.secretAccessKey);
  serveConditionalPuts(app, s3Store);
  countSqsRequests(app);
  // Nothing is acknowledged before it is on disk: a write to S3 (and the event it raises), a queue change.
  app.addHook('onSend', async (request, _reply, payload) => {
    if (!o.stateDir || request.method === 'GET' || request.method === 'HEAD') return payload;
    const target = request.headers['x-amz-target'];
    if (typeof target === 'string') {
      await queues.saved(target);
      return payload;
    }
    await Promise.all([files.flush(), queues.saveNow()]);
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
  queues.restore(port, o.region);

  const ddb = await startDynamo(o.stateDir, credentials);
  const ses = await startSes(o.stateDir, credentials);

  const url = (s: { address(): AddressInfo | string | null }) =>
    `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    endpoints: { s3sqs: `http://127.0.0.1:${port}`, dynamodb: url(ddb), ses: url(ses.server) },
    async stop() {
      queues.close();
      await app.close();
      await files.flush();
      await new Promise<void>((r) => ddb.close(() => r()));
      await ses.stop();
    },
  };
}
