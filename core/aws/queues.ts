import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Timings } from '../../config/index.ts';
import { sqsClient } from './clients.ts';
import { retry } from '../shared/retry.ts';

/** Sends of a batch: the entries SQS failed on its side are sent again, up to this many sends in all. */
const BATCH_ATTEMPTS = 5;

/** Entries of a batch SQS failed on its side (not a sender fault): sent again. */
class PartialBatchError extends Error {
  override readonly name = 'PartialBatchError';
}

/** True for the error SQS answers about a queue that does not exist (never created, or deleted). */
export function isMissingQueue(err: unknown): boolean {
  const name = (err as { name?: string }).name ?? '';
  return (
    err instanceof QueueDoesNotExist || name.includes('NonExistentQueue') || name === 'QueueDoesNotExist'
  );
}

/** Message attributes that name the tenant and the job on every message. */
export function jobAttributes(site: string, token: string) {
  return {
    site: { DataType: 'String', StringValue: site },
    token: { DataType: 'String', StringValue: token },
  };
}

export interface JobQueueOptions {
  readonly name: string;
  readonly site: string;
  readonly token: string;
  readonly dlqArn: string;
  /** The stage's chunk visibility and redrive count. */
  readonly timings: Pick<Timings, 'chunkVisibilitySeconds' | 'maxReceiveCount'>;
}

/** SQS operations of the pipeline: per-job queues, chunk batches, the finalize queue. */
export class Queues {
  /** Number of SQS API requests made through this instance (for cost figures). */
  requests = 0;

  constructor(private readonly sqs: SQSClient = sqsClient()) {}

  private get client(): SQSClient {
    this.requests++;
    return this.sqs;
  }

  async createJobQueue(o: JobQueueOptions): Promise<string> {
    const r = await this.client.send(
      new CreateQueueCommand({
        QueueName: o.name,
        Attributes: {
          VisibilityTimeout: String(o.timings.chunkVisibilitySeconds),
          MessageRetentionPeriod: String(4 * 24 * 3600),
          ReceiveMessageWaitTimeSeconds: '20',
          SqsManagedSseEnabled: 'true',
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: o.dlqArn,
            maxReceiveCount: o.timings.maxReceiveCount,
          }),
        },
        tags: { site: o.site, token: o.token, app: 'rowfleet' },
      }),
    );
    if (!r.QueueUrl) throw new Error(`CreateQueue ${o.name} returned no URL`);
    return r.QueueUrl;
  }

  async queueUrl(name: string): Promise<string | undefined> {
    try {
      const r = await this.client.send(new GetQueueUrlCommand({ QueueName: name }));
      return r.QueueUrl;
    } catch (err) {
      if (isMissingQueue(err)) return undefined;
      throw err;
    }
  }

  /**
   * Sends bodies in batches of up to 10 messages and 1 MiB; retries entries SQS reports as failed.
   * Returns the number of SendMessageBatch requests made.
   */
  async sendBatch(queueUrl: string, site: string, token: string, bodies: readonly string[]): Promise<void> {
    let pending = bodies.map((body, i) => ({
      Id: String(i),
      MessageBody: body,
      MessageAttributes: jobAttributes(site, token),
    }));
    if (pending.length === 0) return;
    await retry(
      async () => {
        const r = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }),
        );
        const failed = new Set((r.Failed ?? []).map((f) => f.Id));
        const senderFault = (r.Failed ?? []).find((f) => f.SenderFault);
        if (senderFault)
          throw new Error(`SendMessageBatch rejected a message: ${senderFault.Message ?? 'sender fault'}`);
        pending = pending.filter((e) => failed.has(e.Id));
        if (pending.length > 0)
          throw new PartialBatchError(
            `SendMessageBatch: ${pending.length} messages still failing after ${BATCH_ATTEMPTS} attempts`,
          );
      },
      // Only the entries SQS failed on its side are sent again (200, 400, 800, 1600 ms later); a message SQS
      // refuses (sender fault) is thrown at once, as is any error of the request itself (the SDK retried it).
      {
        attempts: BATCH_ATTEMPTS,
        delayMs: (attempt) => 100 * 2 ** attempt,
        retryIf: (e) => e instanceof PartialBatchError,
      },
    );
  }

  /** One message; a job's message names its site and token in its attributes. */
  async sendOne(queueUrl: string, body: string, site?: string, token?: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        ...(site && token ? { MessageAttributes: jobAttributes(site, token) } : {}),
      }),
    );
  }

  async receive(
    queueUrl: string,
    o: { max: number; waitSeconds: number; visibilitySeconds?: number; signal?: AbortSignal },
  ): Promise<Message[]> {
    if (o.signal?.aborted) return [];
    const r = await this.client
      .send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: o.max,
          WaitTimeSeconds: o.waitSeconds,
          VisibilityTimeout: o.visibilitySeconds,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        // A stop (SIGTERM) ends a long poll at once instead of after up to 20 s.
        { abortSignal: o.signal },
      )
      .catch((err: unknown) => {
        if (o.signal?.aborted) return { Messages: [] };
        throw err;
      });
    return r.Messages ?? [];
  }

  async delete(queueUrl: string, receiptHandle: string): Promise<void> {
    await this.client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
  }

  async extendVisibility(queueUrl: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }

  /** Queues whose name starts with `prefix`, with their tags (site and token on job queues). */
  async listWithTags(prefix: string): Promise<{ url: string; tags: Record<string, string> }[]> {
    const urls: string[] = [];
    let next: string | undefined;
    do {
      const r = await this.client.send(
        new ListQueuesCommand({ QueueNamePrefix: prefix, NextToken: next, MaxResults: 1000 }),
      );
      urls.push(...(r.QueueUrls ?? []));
      next = r.NextToken;
    } while (next);
    const out: { url: string; tags: Record<string, string> }[] = [];
    for (const url of urls) {
      try {
        const r = await this.client.send(new ListQueueTagsCommand({ QueueUrl: url }));
        out.push({ url, tags: r.Tags ?? {} });
      } catch (err) {
        // Deleted since it was listed (a finalize just finished its job): nothing to reap.
        if (!isMissingQueue(err)) throw err;
      }
    }
    return out;
  }

  /** Deletes a queue; a queue that is already gone is not an error. */
  async deleteQueue(queueUrl: string): Promise<void> {
    try {
      await this.client.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    } catch (err) {
      if (isMissingQueue(err)) return;
      throw err;
    }
  }
}

/** Groups message bodies into SendMessageBatch-sized groups: ≤ 10 entries and ≤ `maxBytes` in total. */
export function batchBodies(bodies: readonly string[], maxBytes = 1024 * 1024 - 16 * 1024): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const b of bodies) {
    const size = Buffer.byteLength(b) + 200;
    if (cur.length > 0 && (cur.length === 10 || bytes + size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(b);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
