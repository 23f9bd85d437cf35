import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { sqsClient } from '../core/aws/clients.ts';
import { errorMessage } from '../core/shared/errors.ts';

const POLL_WAIT_SECONDS = 1;
/** Far longer than a receive's long poll takes. */
const RECEIVE_GIVE_UP_MS = 30_000;

/**
 * What Lambda's event sources and EventBridge do on AWS, locally: queues polled and their messages delivered to a
 * handler as SQS events (deleted unless the handler reports them failed), and tasks run on a schedule. Every
 * loop ends at {@link stop}, which waits for the deliveries under way (a clean stop leaves nothing half done).
 */
export class EventSources {
  private readonly loops: Promise<void>[] = [];
  private stopped = false;

  /** Runs `task` every `seconds` (the reaper's schedule, locally). */
  every(seconds: number, name: string, task: () => Promise<unknown>): void {
    const loop = async () => {
      while (!this.stopped) {
        for (let waited = 0; waited < seconds * 1000 && !this.stopped; waited += 100) {
          await new Promise((r) => setTimeout(r, 100));
        }
        if (this.stopped) return;
        try {
          await task();
        } catch (err) {
          process.stderr.write(`local runtime: ${name} failed: ${errorMessage(err)}\n`);
        }
      }
    };
    this.loops.push(loop());
  }

  /** Delivers a queue's messages to a handler as SQS events (the Lambda event source mapping). */
  poll(queueUrl: string, deliver: (e: SQSEvent) => Promise<string[]>): void {
    const sqs = sqsClient();
    const loop = async () => {
      while (!this.stopped) {
        try {
          const r = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: POLL_WAIT_SECONDS,
              MessageAttributeNames: ['All'],
            }),
            // A receive that never answers would stop this queue's deliveries for good: it is given up and the
            // loop polls again (logged below).
            { abortSignal: AbortSignal.timeout(RECEIVE_GIVE_UP_MS) },
          );
          const msgs = r.Messages ?? [];
          if (msgs.length === 0 || this.stopped) continue;
          const records = msgs.map(
            (m) =>
              ({
                messageId: m.MessageId!,
                receiptHandle: m.ReceiptHandle!,
                body: m.Body ?? '',
                attributes: {},
                messageAttributes: {},
                md5OfBody: m.MD5OfBody ?? '',
                eventSource: 'aws:sqs',
                eventSourceARN: queueUrl,
                awsRegion: process.env.AWS_REGION ?? '',
              }) as unknown as SQSRecord,
          );
          let failed: string[];
          try {
            failed = await deliver({ Records: records });
          } catch (err) {
            process.stderr.write(`local runtime: handler failed: ${errorMessage(err)}\n`);
            failed = records.map((x) => x.messageId);
          }
          const done = msgs.filter((m) => !failed.includes(m.MessageId!));
          if (done.length) {
            await sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: queueUrl,
                Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
              }),
            );
          }
        } catch (err) {
          if (!this.stopped) {
            process.stderr.write(`local runtime: polling ${queueUrl} failed: ${errorMessage(err)}\n`);
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      }
    };
    this.loops.push(loop());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}
