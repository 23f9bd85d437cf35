import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ECSClient } from '@aws-sdk/client-ecs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EcsTaskLauncher } from '../../../../core/aws/ecs-launcher.ts';
import { ECS_MAX_ATTEMPTS, ecsClient } from '../../../../core/aws/clients.ts';

/**
 * The SDK's own retry layer, exercised for real (aws-sdk-client-mock replaces `send`, so it never sees it): a
 * stand-in ECS endpoint answers RunTask with throttling twice, then with a task. The client the pipeline uses
 * retries by itself, and every attempt carries the same clientToken, so ECS starts the batch once.
 */
let server: Server;
let endpoint = '';
const runTasks: { clientToken?: string; count?: number }[] = [];
let throttleFirst = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const input = JSON.parse(body || '{}') as { clientToken?: string; count?: number };
      runTasks.push(input);
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (runTasks.length <= throttleFirst) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
        return;
      }
      res.end(JSON.stringify({ tasks: [{ taskArn: 'arn:aws:ecs:local:1:task/c/1' }], failures: [] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('Class: EcsTaskLauncher with the SDK retry layer', () => {
  const config = () => ({
    cluster: 'c',
    taskDefinition: 'td',
    containerName: 'worker',
    subnets: ['s'],
    securityGroups: ['g'],
    assignPublicIp: true,
  });

  it('lets the client retry RunTask throttling, sending the same clientToken on every attempt', async () => {
    // Prepare: the pipeline's client settings, pointed at the stand-in endpoint
    runTasks.length = 0;
    throttleFirst = 2;
    const prod = ecsClient().config;
    const client = new ECSClient({
      endpoint,
      region: 'ap-northeast-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: await prod.maxAttempts(),
      retryMode: typeof prod.retryMode === 'function' ? await prod.retryMode() : prod.retryMode,
    });

    // Act
    const ids = await new EcsTaskLauncher(config, client).launch({ site: 'sakai', token: 't', count: 1 });

    // Assess
    expect(ids).toEqual(['arn:aws:ecs:local:1:task/c/1']);
    expect(runTasks).toHaveLength(3);
    expect(new Set(runTasks.map((r) => r.clientToken)).size).toBe(1);
    expect(runTasks[0]!.clientToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(await prod.maxAttempts()).toBe(ECS_MAX_ATTEMPTS);
  });

  it('gives each launch its own clientToken (a later launch is a new intent)', async () => {
    // Prepare
    runTasks.length = 0;
    throttleFirst = 0;
    const client = new ECSClient({
      endpoint,
      region: 'ap-northeast-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });
    const launcher = new EcsTaskLauncher(config, client);

    // Act
    await launcher.launch({ site: 'sakai', token: 't', count: 1 });
    await launcher.launch({ site: 'sakai', token: 't', count: 1 });

    // Assess
    expect(new Set(runTasks.map((r) => r.clientToken)).size).toBe(2);
  });
});
