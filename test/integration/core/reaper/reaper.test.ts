import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../../../core/aws/clients.ts';
import { JobStore, type Job } from '../../../../core/jobs/store.ts';
import type { LaunchRequest, TaskInfo, TaskLauncher } from '../../../../core/aws/task-launcher.ts';
import { reportQueueName } from '../../../../core/jobs/keys.ts';
import { reap } from '../../../../core/reaper/reaper.ts';
import { createTestJob, testDeps, TEST_STAGE, TEST_TIMINGS, useTestAws } from '../../../helpers/aws.ts';

/** A launcher whose running tasks the test decides. */
class FakeLauncher implements TaskLauncher {
  tasks: TaskInfo[] = [];
  launches: LaunchRequest[] = [];
  stopped: string[] = [];
  async launch(req: LaunchRequest): Promise<string[]> {
    this.launches.push(req);
    return [];
  }
  async stop(_site: string, token: string): Promise<number> {
    const n = this.tasks.filter((t) => t.token === token).length;
    this.tasks = this.tasks.filter((t) => t.token !== token);
    this.stopped.push(token);
    return n;
  }
  async list(): Promise<TaskInfo[]> {
    return this.tasks;
  }
}

const aws = useTestAws();
let jobs: JobStore;
let launcher: FakeLauncher;
let deps: ReturnType<typeof testDeps>;

beforeAll(async () => {
  jobs = new JobStore(aws.table);
  launcher = new FakeLauncher();
  deps = testDeps(aws, { launcher });
});

async function job(o: {
  state: 'RUNNING' | 'SUCCEEDED' | 'RECEIVED';
  runningSecondsAgo?: number;
  chunks?: number;
  done?: number;
  queue?: boolean;
}) {
  const { site, token } = await createTestJob(jobs, 'kashima');
  let queueUrl: string | undefined;
  if (o.queue) {
    queueUrl = await deps.queues.createJobQueue({
      name: reportQueueName(TEST_STAGE, token),
      site,
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });
  }
  if (o.state !== 'RECEIVED') {
    const runningAt = new Date(Date.now() - (o.runningSecondsAgo ?? 0) * 1000).toISOString();
    await jobs.recordSplit(site, token, {
      header: ['id'],
      delimiter: ',',
      workers: 2,
      queueName: o.queue ? reportQueueName(TEST_STAGE, token) : undefined,
      totalChunks: o.chunks ?? 1,
      totalRecords: (o.chunks ?? 1) * 10,
      rejected: 0,
      splitDoneAt: runningAt,
    });
    await jobs.transition(site, token, 'RUNNING', { runningAt });
    if (o.chunks !== undefined) {
      for (let c = 0; c < (o.done ?? 0); c++)
        await jobs.countChunk(site, token, c, { succeeded: 10, failed: 0 });
    }
  }
  if (o.state === 'SUCCEEDED') {
    await jobs.beginFinalize(site, token, new Date(), 60);
    await jobs.transition(site, token, 'SUCCEEDED', { finishedAt: new Date().toISOString() });
  }
  return { site, token, queueUrl, job: (await jobs.get(site, token)) as Job };
}

describe('Function: reap', () => {
  it('grants a stalled job workers again, leaves a young or staffed one alone, and re-asks a lost finalize', async () => {
    // Prepare: three running jobs holding their places in the worker budget — granted 10 minutes ago (its
    // workers are gone), 5 s ago (its tasks may be starting), 10 minutes ago (its two workers run)
    const stalled = await job({ state: 'RUNNING', runningSecondsAgo: 600, chunks: 5, done: 2 });
    const young = await job({ state: 'RUNNING', runningSecondsAgo: 5, chunks: 5, done: 1 });
    const staffed = await job({ state: 'RUNNING', runningSecondsAgo: 600, chunks: 5, done: 1 });
    const allCounted = await job({ state: 'RUNNING', runningSecondsAgo: 600, chunks: 3, done: 3 });
    const granted = async (j: { job: Job }, secondsAgo: number) => {
      await deps.grants.request({
        site: j.job.site,
        token: j.job.token,
        arrivedAt: Date.parse(j.job.receivedAt),
        remaining: 30,
        maxWorkers: 2,
      });
      await deps.grants.pass(deps.budget, {
        launcher: new FakeLauncher(),
        now: () => Date.now() - secondsAgo * 1000,
      });
    };
    await granted(stalled, 600);
    await granted(young, 5);
    await granted(staffed, 600);
    launcher.tasks = [
      { id: 't1', site: staffed.site, token: staffed.token },
      { id: 't2', site: staffed.site, token: staffed.token },
    ];

    // Act
    const report = await reap(deps, { graceSeconds: 60 });

    // Assess
    expect(report.stalled).toEqual([{ site: stalled.site, token: stalled.token }]);
    expect(report.placesReclaimed).toBe(2);
    expect(report.relaunched).toEqual([{ site: stalled.site, token: stalled.token, workers: 2 }]);
    expect(launcher.launches.map((l) => l.token)).toEqual([stalled.token]);
    expect(report.relaunched.map((r) => r.token)).not.toContain(young.token);
    expect(report.finalizeRequested).toEqual([{ site: allCounted.site, token: allCounted.token }]);
    const msgs = await sqsClient().send(
      new ReceiveMessageCommand({ QueueUrl: aws.finalizeQueueUrl, MaxNumberOfMessages: 10 }),
    );
    expect(
      (msgs.Messages ?? []).map((m) => JSON.parse(m.Body!) as { token: string }).map((m) => m.token),
    ).toContain(allCounted.token);
  });

  it("stops a finished job's tasks and deletes its queue, but keeps the queue of a job being split", async () => {
    // Prepare
    const finished = await job({ state: 'SUCCEEDED', chunks: 1, done: 1, queue: true });
    const splitting = await job({ state: 'RECEIVED', queue: true });
    launcher.tasks = [
      { id: 'a', site: finished.site, token: finished.token },
      { id: 'b', site: finished.site, token: finished.token },
    ];

    // Act
    const report = await reap(deps, { graceSeconds: 60 });

    // Assess
    expect(report.tasksStopped).toBe(2);
    expect(launcher.stopped).toContain(finished.token);
    expect(await deps.queues.queueUrl(reportQueueName(TEST_STAGE, finished.token))).toBeUndefined();
    expect(await deps.queues.queueUrl(reportQueueName(TEST_STAGE, splitting.token))).toBeDefined();
  });
});
