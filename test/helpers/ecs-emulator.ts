/**
 * A minimal ECS API for tests that run the deployed code unchanged (core/aws/ecs-launcher.ts EcsTaskLauncher, its
 * SDK client pointed here with AWS_ENDPOINT_URL_ECS): RunTask starts each task as a process through `start`, with
 * the container's environment and the call's overrides; ListTasks, DescribeTasks and StopTask (SIGTERM, as ECS)
 * see those processes. The AWS JSON 1.1 protocol, the operations and fields EcsTaskLauncher uses, nothing else.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface RunTaskInput {
  cluster: string;
  taskDefinition: string;
  count?: number;
  startedBy?: string;
  tags?: { key: string; value: string }[];
  networkConfiguration?: { awsvpcConfiguration?: { subnets?: string[]; assignPublicIp?: string } };
  overrides?: { containerOverrides?: { name: string; environment?: { name: string; value: string }[] }[] };
}

export interface EmulatedTask {
  readonly taskArn: string;
  readonly cluster: string;
  readonly taskDefinition: string;
  readonly startedBy?: string;
  readonly tags: { key: string; value: string }[];
  readonly input: RunTaskInput;
  readonly process: ChildProcess;
  exitCode?: number | null;
}

export class EcsEmulator {
  private server?: Server;
  readonly tasks: EmulatedTask[] = [];
  /** Every call, by operation (RunTask, ListTasks, ...). */
  readonly calls: { operation: string; input: unknown }[] = [];
  url = '';

  constructor(
    /** Starts one task's container with the overrides' environment (by container name). */
    private readonly start: (
      overrides: Record<string, Record<string, string>>,
      task: RunTaskInput,
    ) => ChildProcess,
    private readonly region = 'ap-northeast-1',
    private readonly account = '123456789012',
  ) {}

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
        const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        this.calls.push({ operation, input });
        let status = 200;
        let body: unknown;
        try {
          body = this.answer(operation, input);
        } catch (err) {
          status = 400;
          body = { __type: 'InvalidParameterException', message: (err as Error).message };
        }
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this.url;
  }

  private running(cluster: unknown): EmulatedTask[] {
    return this.tasks.filter((t) => t.cluster === cluster && t.exitCode === undefined);
  }

  private answer(operation: string, input: Record<string, unknown>): unknown {
    switch (operation) {
      case 'RunTask': {
        const run = input as unknown as RunTaskInput;
        const overrides = Object.fromEntries(
          (run.overrides?.containerOverrides ?? []).map((c) => [
            c.name,
            Object.fromEntries((c.environment ?? []).map((e) => [e.name, e.value])),
          ]),
        );
        const clusterName = run.cluster.split('/').pop()!;
        const started = Array.from({ length: run.count ?? 1 }, () => {
          const task: EmulatedTask = {
            taskArn: `arn:aws:ecs:${this.region}:${this.account}:task/${clusterName}/${randomUUID().replaceAll('-', '')}`,
            cluster: run.cluster,
            taskDefinition: run.taskDefinition,
            ...(run.startedBy ? { startedBy: run.startedBy } : {}),
            tags: run.tags ?? [],
            input: run,
            process: this.start(overrides, run),
          };
          task.process.once('exit', (code) => (task.exitCode = code));
          this.tasks.push(task);
          return task;
        });
        return { tasks: started.map((t) => this.describe(t)), failures: [] };
      }
      case 'ListTasks':
        return {
          taskArns: this.running(input.cluster)
            .filter((t) => input.startedBy === undefined || t.startedBy === input.startedBy)
            .map((t) => t.taskArn),
        };
      case 'DescribeTasks': {
        const arns = input.tasks as string[];
        return {
          tasks: this.tasks.filter((t) => arns.includes(t.taskArn)).map((t) => this.describe(t)),
          failures: [],
        };
      }
      case 'StopTask': {
        const task = this.tasks.find((t) => t.taskArn === input.task);
        if (!task) throw new Error(`no task ${String(input.task)}`);
        if (task.exitCode === undefined) task.process.kill('SIGTERM');
        return { task: this.describe(task) };
      }
      default:
        throw new Error(`operation ${operation} is not emulated`);
    }
  }

  private describe(t: EmulatedTask) {
    return {
      taskArn: t.taskArn,
      clusterArn: t.cluster,
      taskDefinitionArn: t.taskDefinition,
      startedBy: t.startedBy,
      tags: t.tags,
      lastStatus: t.exitCode === undefined ? 'RUNNING' : 'STOPPED',
    };
  }

  /** Stops the tasks still running (SIGKILL) and the server. */
  async close(): Promise<void> {
    await Promise.all(
      this.tasks
        .filter((t) => t.exitCode === undefined)
        .map(
          (t) =>
            new Promise<void>((r) => {
              t.process.once('exit', () => r());
              t.process.kill('SIGKILL');
            }),
        ),
    );
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
