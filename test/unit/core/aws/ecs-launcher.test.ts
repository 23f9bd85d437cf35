import {
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  RunTaskCommand,
  StopTaskCommand,
} from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EcsTaskLauncher, type EcsLauncherConfig } from '../../../../core/aws/ecs-launcher.ts';
import { LaunchFailedError } from '../../../../core/aws/task-launcher.ts';

const config: EcsLauncherConfig = {
  cluster: 'arn:aws:ecs:ap-northeast-1:123456789012:cluster/rowfleet-dev',
  taskDefinition: 'arn:aws:ecs:ap-northeast-1:123456789012:task-definition/rowfleet-dev-worker:7',
  containerName: 'worker',
  subnets: ['subnet-a', 'subnet-b'],
  securityGroups: ['sg-1'],
  assignPublicIp: true,
};
const token = '0b6c1c9e-1111-4222-8333-444455556666';
const ecs = mockClient(ECSClient);
const launcher = () => new EcsTaskLauncher(() => config, new ECSClient({}));

beforeEach(() => {
  ecs.reset();
});

describe('Class: EcsTaskLauncher', () => {
  it('starts workers with RunTask, at most 10 per call, naming token and site and passing them as env overrides', async () => {
    // Prepare
    ecs.on(RunTaskCommand).callsFake((input: { count: number }) => ({
      tasks: Array.from({ length: input.count }, (_, i) => ({ taskArn: `arn:task/${i}` })),
    }));

    // Act
    const ids = await launcher().launch({ site: 'sakai', token, count: 23 });

    // Assess
    const calls = ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.count)).toEqual([10, 10, 3]);
    expect(ids).toHaveLength(23);
    expect(calls[0]).toEqual({
      cluster: config.cluster,
      taskDefinition: config.taskDefinition,
      launchType: 'FARGATE',
      count: 10,
      clientToken: expect.stringMatching(/^[0-9a-f-]{36}$/),
      startedBy: token,
      group: 'rowfleet:sakai',
      tags: [
        { key: 'site', value: 'sakai' },
        { key: 'token', value: token },
      ],
      propagateTags: 'TASK_DEFINITION',
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ['subnet-a', 'subnet-b'],
          securityGroups: ['sg-1'],
          assignPublicIp: 'ENABLED',
        },
      },
      overrides: {
        containerOverrides: [
          {
            name: 'worker',
            environment: [
              { name: 'SITE', value: 'sakai' },
              { name: 'JOB_TOKEN', value: token },
            ],
          },
        ],
      },
    });
  });

  it('reports RunTask failures', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ failures: [{ reason: 'RESOURCE:CPU', detail: 'no capacity' }] });

    // Act
    const launched = launcher().launch({ site: 'kawasaki', token, count: 1 });

    // Assess
    await expect(launched).rejects.toThrow(/RESOURCE:CPU no capacity/);
  });

  it('names the tasks that started when a later RunTask call is refused (half of a launch), and counts the rest as failed', async () => {
    // Prepare: 20 tasks in two calls; the second starts 3 and refuses 7 (vCPU quota)
    const arns = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ taskArn: `arn:task/${from + i}` }));
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: arns(0, 10) })
      .resolvesOnce({
        tasks: arns(10, 3),
        failures: Array.from({ length: 7 }, () => ({ reason: 'RESOURCE:VCPU', detail: 'quota' })),
      });

    // Act
    const err = await launcher()
      .launch({ site: 'sakai', token, count: 20 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );

    // Assess
    expect(err).toBeInstanceOf(LaunchFailedError);
    const failed = err as LaunchFailedError;
    expect(failed.started).toHaveLength(13);
    expect(failed.failed).toBe(7);
    expect(failed.message).toMatch(/RESOURCE:VCPU quota/);
  });

  it('counts every task as not started when the first RunTask call throws', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));

    // Act
    const err = await launcher()
      .launch({ site: 'sakai', token, count: 4 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );

    // Assess
    expect(err).toBeInstanceOf(LaunchFailedError);
    expect((err as LaunchFailedError).started).toEqual([]);
    expect((err as LaunchFailedError).failed).toBe(4);
  });

  it("stops every running task of the job (ListTasks by startedBy, page by page), and lists tasks with their job's tags", async () => {
    // Prepare
    ecs
      .on(ListTasksCommand, { startedBy: token })
      .resolvesOnce({ taskArns: ['t1', 't2'], nextToken: 'p2' })
      .resolvesOnce({ taskArns: ['t3'] });
    ecs.on(ListTasksCommand, { startedBy: undefined }).resolves({ taskArns: ['t9'] });
    ecs.on(StopTaskCommand).resolves({});
    ecs.on(DescribeTasksCommand).resolves({
      tasks: [
        {
          taskArn: 't9',
          tags: [
            { key: 'site', value: 'marifu' },
            { key: 'token', value: token },
          ],
        },
      ],
    });

    // Act
    const stopped = await launcher().stop('sakai', token);
    const tasks = await launcher().list();

    // Assess
    expect(stopped).toBe(3);
    expect(
      ecs.commandCalls(StopTaskCommand).map((c) => [c.args[0].input.cluster, c.args[0].input.task]),
    ).toEqual([
      [config.cluster, 't1'],
      [config.cluster, 't2'],
      [config.cluster, 't3'],
    ]);
    expect(ecs.commandCalls(ListTasksCommand)[0]!.args[0].input).toMatchObject({
      cluster: config.cluster,
      startedBy: token,
      desiredStatus: 'RUNNING',
    });
    expect(tasks).toEqual([{ id: 't9', site: 'marifu', token }]);
  });
});
