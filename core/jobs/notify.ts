import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { StageConfig } from '../../config/index.ts';
import { snsClient } from '../aws/clients.ts';
import { jobLogger } from '../shared/log.ts';
import type { Job } from './store.ts';
import type { RowCounts } from './states.ts';

export type Outcome = 'SUCCEEDED' | 'PARTIAL' | 'FAILED' | 'REJECTED' | 'CANCELLED';

/**
 * Which outcomes a stage announces (config: `notifications`); a rejected file is a failure, a cancelled job (some
 * records done, the rest not) a partial result. A job stopped by its failure rate is FAILED, with the code
 * FAILURE_RATE_EXCEEDED in the message's `error`.
 */
export function announces(switches: StageConfig['notifications'], state: Outcome): boolean {
  if (state === 'SUCCEEDED') return switches.success;
  if (state === 'PARTIAL' || state === 'CANCELLED') return switches.partial;
  return switches.failure;
}

/** Publishes one message per finished job to the job-outcomes topic, with the site as a message attribute. */
export class JobNotifier {
  constructor(
    private readonly topicArn: string,
    private readonly switches: StageConfig['notifications'],
    private readonly sns: SNSClient = snsClient(),
  ) {}

  async jobFinished(job: Job, state: Outcome, counts: RowCounts): Promise<boolean> {
    if (!announces(this.switches, state)) return false;
    const body = {
      site: job.site,
      token: job.token,
      state,
      fileName: job.fileName,
      office: job.office,
      rows: counts,
      ...(job.error ? { error: job.error } : {}),
      finishedAt: job.finishedAt,
    };
    try {
      await this.sns.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          Subject: `Rowfleet job ${state} (${job.site})`.slice(0, 100),
          Message: JSON.stringify(body),
          MessageAttributes: {
            site: { DataType: 'String', StringValue: job.site },
            state: { DataType: 'String', StringValue: state },
          },
        }),
      );
      return true;
    } catch (err) {
      // The job's outcome is already recorded; a lost notification must not fail the job.
      jobLogger(job.site, job.token).error('job notification failed', { error: err as Error });
      return false;
    }
  }
}
