import {
  DescribeTasksCommand,
  ListTasksCommand,
  RunTaskCommand,
  type RunTaskCommandInput,
  StopTaskCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { randomUUID } from 'node:crypto';
import { requireEnv } from '../shared/env.ts';
import { errorMessage } from '../shared/errors.ts';
import {
  LaunchFailedError,
  workerEnv,
  type LaunchRequest,
  type TaskInfo,
  type TaskLauncher,
} from './task-launcher.ts';
import { ecsClient } from './clients.ts';
import { ENV } from '../../config/env.ts';

export interface EcsLauncherConfig {
  readonly cluster: string;
  readonly taskDefinition: string;
  readonly containerName: string;
  readonly subnets: string[];
  readonly securityGroups: string[];
  readonly assignPublicIp: boolean;
}

export function ecsLauncherConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EcsLauncherConfig {
  return {
    cluster: requireEnv(ENV.cluster, env),
    taskDefinition: requireEnv(ENV.taskDefinition, env),
    containerName: requireEnv(ENV.workerContainer, env),
    subnets: requireEnv(ENV.workerSubnets, env).split(','),
    securityGroups: requireEnv(ENV.workerSecurityGroups, env).split(','),
    assignPublicIp: env[ENV.workerAssignPublicIp] === 'ENABLED',
  };
}

/** `startedBy` is at most 36 characters: the token (a UUID) fits exactly. */
const startedBy = (token: string) => token;

/** Starts dedicated Fargate row workers for a job with RunTask (≤ 10 per call) and stops them by token. */
export class EcsTaskLauncher implements TaskLauncher {
  /** Throttling and transient errors are retried by the client itself (clients.ts ecsClient: adaptive mode). */
  constructor(
    private readonly config: () => EcsLauncherConfig = () => ecsLauncherConfigFromEnv(),
    private readonly ecs: ECSClient = ecsClient(),
  ) {}

  /**
   * RunTask takes at most 10 tasks per call. The first call that fails (an error after the client's retries, or
   * tasks refused in its `failures`) ends the launch with {@link LaunchFailedError}: the tasks started so far are
   * named in it, every other one counts as not started (the caller retries exactly those later).
   */
  async launch(req: LaunchRequest): Promise<string[]> {
    const c = this.config();
    const ids: string[] = [];
    for (let left = req.count; left > 0; left -= 10) {
      const input: RunTaskCommandInput = {
        cluster: c.cluster,
        taskDefinition: c.taskDefinition,
        launchType: 'FARGATE',
        count: Math.min(10, left),
        // Idempotency: the SDK's retries of this call send the same token, so a retry after a lost answer
        // cannot start a second batch of workers. A later launch (the reaper's) is a new intent, a new token.
        clientToken: randomUUID(),
        startedBy: startedBy(req.token),
        group: `rowfleet:${req.site}`,
        tags: [
          { key: 'site', value: req.site },
          { key: 'token', value: req.token },
        ],
        propagateTags: 'TASK_DEFINITION',
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: c.subnets,
            securityGroups: c.securityGroups,
            assignPublicIp: c.assignPublicIp ? 'ENABLED' : 'DISABLED',
          },
        },
        overrides: {
          containerOverrides: [
            {
              name: c.containerName,
              environment: Object.entries(workerEnv(req)).map(([name, value]) => ({ name, value })),
            },
          ],
        },
      };
      let r;
      try {
        r = await this.ecs.send(new RunTaskCommand(input));
      } catch (err) {
        throw new LaunchFailedError(ids, req.count - ids.length, `RunTask failed: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      for (const t of r.tasks ?? []) if (t.taskArn) ids.push(t.taskArn);
      if (r.failures?.length) {
        const reasons = r.failures.map((f) => `${f.reason ?? ''} ${f.detail ?? ''}`.trim()).join('; ');
        throw new LaunchFailedError(ids, req.count - ids.length, `RunTask refused tasks: ${reasons}`);
      }
    }
    return ids;
  }

  /** Running worker tasks of the cluster, with site and token from their tags. */
  async list(): Promise<TaskInfo[]> {
    const c = this.config();
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const r = await this.ecs.send(
        new ListTasksCommand({ cluster: c.cluster, desiredStatus: 'RUNNING', nextToken }),
      );
      arns.push(...(r.taskArns ?? []));
      nextToken = r.nextToken;
    } while (nextToken);
    const out: TaskInfo[] = [];
    for (let i = 0; i < arns.length; i += 100) {
      const r = await this.ecs.send(
        new DescribeTasksCommand({ cluster: c.cluster, tasks: arns.slice(i, i + 100), include: ['TAGS'] }),
      );
      for (const t of r.tasks ?? []) {
        const tag = (k: string) => t.tags?.find((x) => x.key === k)?.value;
        const site = tag('site');
        const token = tag('token') ?? t.startedBy;
        if (t.taskArn && site && token) out.push({ id: t.taskArn, site, token });
      }
    }
    return out;
  }

  async stop(site: string, token: string): Promise<number> {
    const c = this.config();
    let stopped = 0;
    let nextToken: string | undefined;
    do {
      const r = await this.ecs.send(
        new ListTasksCommand({
          cluster: c.cluster,
          startedBy: startedBy(token),
          desiredStatus: 'RUNNING',
          nextToken,
        }),
      );
      for (const task of r.taskArns ?? []) {
        await this.ecs.send(
          new StopTaskCommand({
            cluster: c.cluster,
            task,
            reason: `rowfleet: job ${token} of ${site} finished`,
          }),
        );
        stopped++;
      }
      nextToken = r.nextToken;
    } while (nextToken);
    return stopped;
  }
}
