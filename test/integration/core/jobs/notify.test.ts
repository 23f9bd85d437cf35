import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { snsClient, sqsClient } from '../../../../core/aws/clients.ts';
import { JobNotifier } from '../../../../core/jobs/notify.ts';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { csvOf, runJobs } from '../../../helpers/pipeline-jobs.ts';

const aws = useTestAws();
let inbox: string;
let topicArn: string;

beforeAll(async () => {
  topicArn = (await snsClient().send(new CreateTopicCommand({ Name: 'job-outcomes-test' }))).TopicArn!;
  inbox = (await sqsClient().send(new CreateQueueCommand({ QueueName: 'job-outcomes-inbox' }))).QueueUrl!;
  const arn = (
    await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: inbox, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  await snsClient().send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: arn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
});

async function received(): Promise<{ site: string; token: string; state: string }[]> {
  const out: { site: string; token: string; state: string }[] = [];
  for (let empty = 0; empty < 2;) {
    const r = await sqsClient().send(
      new ReceiveMessageCommand({ QueueUrl: inbox, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    if (!r.Messages?.length) empty++;
    for (const m of r.Messages ?? [])
      out.push(JSON.parse(m.Body!) as { site: string; token: string; state: string });
  }
  return out;
}

describe('Class: JobNotifier', () => {
  it('announces partial and failed jobs once each (finalize delivered twice), and successes not by default', async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = {
      ...testDeps(aws, { launcher }),
      notifier: new JobNotifier(topicArn, { success: false, partial: true, failure: true }),
    };

    // Act: one clean job, one with a bad record, one rejected file
    const [ok, partial] = await runJobs(deps, launcher, [
      { site: 'sakai', office: 'main', csv: csvOf(5) },
      { site: 'kawasaki', office: 'main', csv: csvOf(5, [3]) },
    ]);
    const rejected = await startDirectJob(deps, 'marifu', Buffer.from('a,a\n1,2\n'), { processor: 'json' });
    const messages = await received();

    // Assess
    expect(ok!.state).toBe('SUCCEEDED');
    expect(partial!.state).toBe('PARTIAL');
    expect(rejected.state).toBe('REJECTED');
    expect(messages.map((m) => [m.site, m.token, m.state]).sort()).toEqual(
      [
        ['kawasaki', partial!.token, 'PARTIAL'],
        ['marifu', rejected.token, 'REJECTED'],
      ].sort(),
    );
  });
});
