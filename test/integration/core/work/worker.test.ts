import { describe, expect, it } from 'vitest';
import { JobStore } from '../../../../core/jobs/store.ts';
import { reportQueueName } from '../../../../core/jobs/keys.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { createTestJob, testDeps, TEST_STAGE, TEST_TIMINGS, useTestAws } from '../../../helpers/aws.ts';

const aws = useTestAws();

describe('Function: runWorker', () => {
  it('ends a 20 s long poll at once when stopped (SIGTERM) and reports it', async () => {
    // Prepare: a running job with an empty queue
    const deps = testDeps(aws);
    const jobs = new JobStore(aws.table);
    const { site, token } = await createTestJob(jobs, 'marifu');
    const queueName = reportQueueName(TEST_STAGE, token);
    await deps.queues.createJobQueue({
      name: queueName,
      site,
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });
    await jobs.transition(site, token, 'RUNNING', { queueName, header: ['a'] });
    const stop = new AbortController();

    // Act
    const started = Date.now();
    const running = runWorker(deps, {
      site,
      token,
      waitSeconds: 20,
      idlePolls: 2,
      visibilitySeconds: 30,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(), 300);
    const summary = await running;

    // Assess
    expect(summary.reason).toBe('stopped');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
