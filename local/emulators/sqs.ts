/**
 * The embedded SQS (fauxqs's store): its requests counted as AWS bills them, its queues (attributes, tags,
 * messages) saved in the state directory and restored on start.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { buildApp } from 'fauxqs';
import { writeFileAtomic, writeFileAtomicSync } from '../../core/shared/atomic-write.ts';

// fauxqs does not export its store classes from the package root; they are plain modules in dist.
import { SqsStore } from '../../node_modules/fauxqs/dist/sqs/sqsStore.js';

const QUEUE_SETTINGS = [
  'VisibilityTimeout',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy',
  'DelaySeconds',
  'MaximumMessageSize',
];

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
export function countSqsRequests(app: ReturnType<typeof buildApp>): void {
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
    const p = file ? writeFileAtomic(file, queueSnapshot(sqsStore)) : Promise.resolve();
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
 * The queues of the state directory: saved after every change (a caller answered only once its change is saved),
 * deletes saved soon after, everything saved at close, and restored on start.
 */
export class QueuePersistence {
  private readonly save: () => Promise<void>;
  private deleteSave: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string | undefined,
    private readonly sqsStore: SqsStore,
  ) {
    this.save = queueSaver(file, sqsStore);
  }

  /** Before an SQS action (its `x-amz-target`) is answered: what a restart must find is saved first. */
  async saved(target: string): Promise<void> {
    if (SQS_CHANGES.test(target)) await this.save();
    else if (SQS_DELETES.test(target)) this.saveSoon();
  }

  /** Every queue as it is now, saved (a write to S3 may have raised an event). */
  saveNow(): Promise<void> {
    return this.save();
  }

  private saveSoon(): void {
    this.deleteSave ??= setTimeout(() => {
      this.deleteSave = undefined;
      void this.save().catch(() => undefined);
    }, DELETE_SAVE_DELAY_MS);
  }

  /** Restores the queues (with their messages) saved by the previous run, addressed at the emulator's port. */
  restore(port: number, region: string): void {
    const sqsStore = this.sqsStore;
    if (!this.file || !existsSync(this.file)) return;
    const saved = JSON.parse(readFileSync(this.file, 'utf8')) as SavedQueue[];
    for (const s of saved) {
      const url = sqsStore.buildQueueUrl(s.name, String(port), `127.0.0.1:${port}`, region);
      const q = sqsStore.createQueue(
        s.name,
        url,
        `arn:aws:sqs:${region}:000000000000:${s.name}`,
        s.attributes,
        s.tags,
      );
      for (const m of s.messages) q.enqueue(m as Parameters<typeof q.enqueue>[0]);
    }
  }

  /** The last save, at stop. */
  close(): void {
    clearTimeout(this.deleteSave);
    if (this.file) writeFileAtomicSync(this.file, queueSnapshot(this.sqsStore));
  }
}
