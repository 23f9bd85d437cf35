/**
 * The bytes Rowfleet ships, run as deployed: the functions from their synthesized asset bundles (cdk.out, not the
 * sources), the worker from the image bundle fargate-worker/Dockerfile's steps build, each copied where no project
 * node_modules is reachable, on the deployed Node, with the environment the template gives it (its Refs and GetAtts
 * resolved to the embedded emulators' resources) — against the embedded emulators, ECS included (RunTask starts
 * the image's CMD). Outside AWS remain: IAM (test/infra IAM checks), Lambda's own runtime client, Fargate itself.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, parse } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../config/routes.ts';
import { DEPLOYED_NODE_MAJOR } from '../../config/node.ts';
import { getStage } from '../../config/index.ts';
import { localResourceNames, resourceNames } from '../../config/names.ts';
import { sqsClient } from '../../core/aws/clients.ts';
import { FUNCTION_ENTRIES, type FunctionName } from '../../lib/rowfleet-stack.ts';
import { projectPath } from '../../lib/paths.ts';
import { LocalApi } from '../../local/api-gateway.ts';
import { startEmulators, type Emulators } from '../../local/emulators/index.ts';
import { EventSources } from '../../local/event-sources.ts';
import { IsolatedFunction } from '../../local/functions.ts';
import { ensureResources, type StageResources } from '../../local/resources.ts';
import { EcsEmulator } from '../helpers/ecs-emulator.ts';
import { httpEsImportsOf } from '../helpers/es-imports.ts';
import { until } from '../helpers/wait.ts';
import { buildWorkerImage, DEPLOYED_NODE, type WorkerImage } from '../helpers/worker-image.ts';
import { bundleDir, synthStage, type Synthesized } from '../helpers/synth.ts';

const STAGE = 'dev';
const REGION = 'ap-northeast-1'; // test/helpers/synth.ts synthesizes for 123456789012 in ap-northeast-1
const ACCOUNT = '123456789012';
const SITE = 'sakai';
const TOKEN = 'Bearer deployed-bundles';

type Cfn = Record<string, unknown>;
interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

/** No node_modules in `dir` or any folder above it: a bundle there resolves packages from itself only. */
function reachableNodeModules(dir: string): string[] {
  const found: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) found.push(join(d, 'node_modules'));
    if (d === parse(d).root) return found;
  }
}

/** The package names a bundle imports or requires at run time (string literals; minified or not). */
function importedPackages(code: string): string[] {
  const out = new Set<string>();
  for (const m of code.matchAll(
    /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s*)["']([^"']+)["']/g,
  )) {
    const spec = m[1]!;
    if (/^(node:)?(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]*)?$/.test(spec)) out.add(spec);
  }
  return [...out].sort();
}

/**
 * Packages the AWS SDK asks for inside a try/catch, only for SigV4a signing (multi-Region access points), which no
 * call of ours uses: not in the lock file, so neither the build stage nor the image has them, and esbuild leaves
 * them as run-time requires.
 */
const SDK_OPTIONAL = ['@aws-sdk/signature-v4-crt', '@aws-sdk/signature-v4a'];

const isBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s.split('/')[0]!);

/**
 * Resolves the template's values (Ref, Fn::GetAtt, Fn::Join, pseudo parameters) to the emulators' resources: the
 * bucket, table, queues and topic the local runtime creates for the stage; names for ECS and the network that only
 * the ECS emulator reads.
 */
function resolver(resources: Record<string, CfnResource>, local: Record<string, Record<string, string>>) {
  const resolve = (v: unknown): string => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    const o = v as Cfn;
    if ('Ref' in o) {
      const ref = o.Ref as string;
      const pseudo: Record<string, string> = {
        'AWS::Region': REGION,
        'AWS::AccountId': ACCOUNT,
        'AWS::Partition': 'aws',
        'AWS::URLSuffix': 'amazonaws.com',
      };
      const value = pseudo[ref] ?? local[ref]?.Ref;
      if (value === undefined) throw new Error(`unresolved Ref ${ref} (${resources[ref]?.Type})`);
      return value;
    }
    if ('Fn::GetAtt' in o) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      const value = local[id]?.[attr];
      if (value === undefined) throw new Error(`unresolved GetAtt ${id}.${attr} (${resources[id]?.Type})`);
      return value;
    }
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(resolve).join(sep);
    }
    throw new Error(`unresolved ${JSON.stringify(v)}`);
  };
  return resolve;
}

describe('Deployed bytes: the synthesized bundles and the worker image run a job on the deployed Node', () => {
  let s: Synthesized;
  let image: WorkerImage;
  let emulators: Emulators;
  let ecs: EcsEmulator;
  let api: LocalApi;
  const sources = new EventSources();
  const functions: Partial<Record<FunctionName, IsolatedFunction>> = {};
  const copies: string[] = [];
  let lambdaEnvs: Record<FunctionName, Record<string, string>>;
  let workerLog = '';

  beforeAll(async () => {
    // Prepare: the stack synthesized with its bundles (as `cdk synth`), the image built as its Dockerfile says
    s = synthStage(STAGE, { bundle: true });
    image = buildWorkerImage();
    process.env.AWS_REGION = REGION;
    process.env.AWS_ACCESS_KEY_ID = 'local';
    process.env.AWS_SECRET_ACCESS_KEY = 'local';
    emulators = await startEmulators({ region: REGION, accessKeyId: 'local', secretAccessKey: 'local' });
    const endpoints = {
      AWS_ENDPOINT_URL_S3: emulators.endpoints.s3sqs,
      AWS_ENDPOINT_URL_SQS: emulators.endpoints.s3sqs,
      AWS_ENDPOINT_URL_SNS: emulators.endpoints.s3sqs,
      AWS_ENDPOINT_URL_DYNAMODB: emulators.endpoints.dynamodb,
      AWS_ENDPOINT_URL_SESV2: emulators.endpoints.ses,
    };
    Object.assign(process.env, endpoints);
    const names = localResourceNames(STAGE);
    const created: StageResources = await ensureResources(names, getStage(STAGE).timings, false);
    const arnOf = async (url: string) =>
      (await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
        .Attributes!.QueueArn!;
    const queues: Record<string, { Ref: string; Arn: string; QueueName: string }> = {
      [names.finalizeQueue]: {
        Ref: created.finalizeQueueUrl,
        Arn: await arnOf(created.finalizeQueueUrl),
        QueueName: names.finalizeQueue,
      },
      [names.uploadEventsQueue]: {
        Ref: created.uploadEventsUrl,
        Arn: await arnOf(created.uploadEventsUrl),
        QueueName: names.uploadEventsQueue,
      },
      [names.dlq]: { Ref: 'unused', Arn: created.dlqArn, QueueName: names.dlq },
    };

    // The template's resources → the emulators' (by type; the data bucket and the job-outcomes topic by id)
    const template = s.template.toJSON() as { Resources: Record<string, CfnResource> };
    const local: Record<string, Record<string, string>> = {};
    const aws = resourceNames(STAGE);
    for (const [id, r] of Object.entries(template.Resources)) {
      const p = r.Properties ?? {};
      if (r.Type === 'AWS::S3::Bucket' && id.startsWith('StorageDataBucket'))
        local[id] = {
          Ref: names.bucket,
          Arn: `arn:aws:s3:::${names.bucket}`,
          RegionalDomainName: new URL(emulators.endpoints.s3sqs).host,
        };
      else if (r.Type === 'AWS::DynamoDB::Table')
        local[id] = { Ref: names.table, Arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${names.table}` };
      else if (r.Type === 'AWS::SQS::Queue' && queues[p.QueueName as string])
        local[id] = queues[p.QueueName as string]!;
      else if (r.Type === 'AWS::SNS::Topic' && id.startsWith('MonitoringJobsTopic'))
        local[id] = { Ref: created.jobsTopicArn, TopicArn: created.jobsTopicArn };
      else if (r.Type === 'AWS::ECS::Cluster')
        local[id] = {
          Ref: aws.cluster,
          Arn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${aws.cluster}`,
        };
      else if (r.Type === 'AWS::ECS::TaskDefinition')
        local[id] = { Ref: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${aws.workerFamily}:1` };
      else if (r.Type === 'AWS::EC2::Subnet') local[id] = { Ref: `subnet-${id.toLowerCase()}` };
      else if (r.Type === 'AWS::EC2::SecurityGroup') local[id] = { GroupId: `sg-${id.toLowerCase()}` };
    }
    const resolve = resolver(template.Resources, local);
    const runtimeEnv = {
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      ...endpoints,
    };

    // The worker task: the image's ENV, the container's environment from the task definition, RunTask's overrides
    const taskDef = Object.values(template.Resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition')!;
    const container = (
      taskDef.Properties!.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[]
    )[0]!;
    const containerEnv = Object.fromEntries(container.Environment.map((e) => [e.Name, resolve(e.Value)]));
    ecs = new EcsEmulator((overrides) => {
      const child = spawn(image.command[0], image.command.slice(1), {
        cwd: image.appDir,
        env: {
          ...image.env,
          ...containerEnv,
          ...overrides.worker,
          ...runtimeEnv,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (d: Buffer) => (workerLog += d.toString()));
      child.stderr.on('data', (d: Buffer) => (workerLog += d.toString()));
      return child;
    });
    const ecsUrl = await ecs.listen();

    // Each function: its asset copied out of the project, its template environment, Lambda's variables
    lambdaEnvs = {} as Record<FunctionName, Record<string, string>>;
    for (const name of Object.keys(FUNCTION_ENTRIES) as FunctionName[]) {
      const fn =
        template.Resources[s.stack.getLogicalId(s.stack.functions[name].node.defaultChild as never)]!;
      const vars = (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      lambdaEnvs[name] = {
        ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, resolve(v)])),
        ...runtimeEnv,
        AWS_ENDPOINT_URL_ECS: ecsUrl,
        AWS_LAMBDA_FUNCTION_NAME: `Rowfleet-${STAGE}-${name}`,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.Properties!.MemorySize ?? 128),
        TZ: ':UTC',
      };
    }
    for (const name of ['upload', 'status', 'finalize'] as const) {
      const dir = mkdtempSync(join(tmpdir(), `rowfleet-fn-${name}-`));
      copies.push(dir);
      cpSync(bundleDir(s, name), dir, { recursive: true });
      const fn = new IsolatedFunction(name, dir, {
        entry: join(dir, 'index.mjs'),
        node: DEPLOYED_NODE,
        env: lambdaEnvs[name],
      });
      functions[name] = fn;
    }
    await Promise.all(Object.values(functions).map((f) => f.ready));

    // Lambda's event sources (the finalize and upload-events queues) and API Gateway in front of the functions
    const finalize = functions.finalize!.invoke as (e: SQSEvent) => Promise<SQSBatchResponse>;
    sources.poll(created.finalizeQueueUrl, async (e) =>
      (await finalize(e)).batchItemFailures.map((f) => f.itemIdentifier),
    );
    sources.poll(created.uploadEventsUrl, async (e) => {
      await functions.upload!.invoke(e);
      return [];
    });
    api = new LocalApi(
      API_ROUTES.flatMap((r) =>
        r.function === 'upload' || r.function === 'status'
          ? [
              {
                method: r.method,
                resource: r.path,
                auth: r.auth,
                handler: functions[r.function]!.invoke as (
                  e: APIGatewayProxyEvent,
                ) => Promise<APIGatewayProxyResult>,
              },
            ]
          : [],
      ),
      async (h) => (h === TOKEN ? SITE : undefined),
      STAGE,
    );
    await api.listen();
  }, 240_000);

  afterAll(async () => {
    await sources.stop();
    await api?.close();
    await ecs?.close();
    await Promise.all(Object.values(functions).map((f) => f.stop()));
    await emulators?.stop();
    for (const d of copies) rmSync(d, { recursive: true, force: true });
    image?.cleanup();
    s?.cleanup();
  });

  it('builds the image bundle with the Dockerfile steps: one module that needs no package the image lacks', () => {
    // Act
    const bundle = readFileSync(join(image.appDir, 'worker.mjs'), 'utf8');

    // Assess: the runtime stage has no node_modules (only /out/ is copied), so only Node's own modules may be imported
    expect(importedPackages(bundle).filter((m) => !isBuiltin(m))).toEqual(SDK_OPTIONAL);
    for (const pkg of SDK_OPTIONAL) expect(existsSync(projectPath(`node_modules/${pkg}`))).toBe(false);
    expect(importedPackages(bundle)).toContain('node:module'); // the banner's createRequire
    // node:http is taken without its ES module facade, which would load undici at every start (config/node-http.cjs).
    expect(httpEsImportsOf(bundle)).toEqual([]);
    expect(reachableNodeModules(image.appDir)).toEqual([]);
    expect(image.command).toEqual([DEPLOYED_NODE, 'worker.mjs']);
    expect(image.substituted).toEqual([
      expect.stringMatching(/^RUN npm ci /),
      expect.stringMatching(/^USER node/),
    ]);
  });

  it('runs on the deployed Node and loads every function bundle in isolation with its template environment', async () => {
    // Prepare
    const version = spawn(DEPLOYED_NODE, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out = await new Promise<string>((r) => {
      let text = '';
      version.stdout.on('data', (d: Buffer) => (text += d.toString()));
      version.once('close', () => r(text));
    });
    const others = (Object.keys(FUNCTION_ENTRIES) as FunctionName[]).filter((n) => !functions[n]);

    // Act: the functions the job does not invoke are loaded once too (module init reads their environment)
    const loaded = await Promise.all(
      others.map(async (name) => {
        const dir = mkdtempSync(join(tmpdir(), `rowfleet-fn-${name}-`));
        copies.push(dir);
        cpSync(bundleDir(s, name), dir, { recursive: true });
        const fn = new IsolatedFunction(name, dir, {
          entry: join(dir, 'index.mjs'),
          node: DEPLOYED_NODE,
          env: lambdaEnvs[name],
        });
        await fn.ready;
        await fn.stop();
        return name;
      }),
    );

    // Assess
    expect(out.trim()).toMatch(new RegExp(`^v${DEPLOYED_NODE_MAJOR}\\.`));
    expect(loaded).toEqual(others);
    for (const name of Object.keys(FUNCTION_ENTRIES) as FunctionName[]) {
      expect(httpEsImportsOf(readFileSync(join(bundleDir(s, name), 'index.mjs'), 'utf8')), name).toEqual([]);
    }
    for (const dir of copies) expect(reachableNodeModules(dir)).toEqual([]);
  });

  it('runs a job: upload, status and finalize from their bundles, the workers from the image, through ECS', async () => {
    // Prepare
    const csv =
      ['id,name', ...Array.from({ length: 30 }, (_, i) => `${i + 1},name ${i + 1}`)].join('\n') + '\n';
    const call = async (method: string, path: string, body?: string) => {
      const r = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: TOKEN, 'content-type': 'text/csv' },
        ...(body ? { body } : {}),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };

    // Act
    const started = await call('POST', '/jobs?processor=json&workers=2', csv);
    const token = started.body.token as string;
    let view: Record<string, unknown> = started.body;
    for (let i = 0; i < 240 && !view.finishedAt; i++) {
      await new Promise((r) => setTimeout(r, 500));
      view = (await call('GET', `/jobs/${token}`)).body;
    }

    // Assess
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(view.state, `${JSON.stringify(view)}\n${workerLog}`).toBe('SUCCEEDED');
    const zip = await fetch((view.download as { url: string }).url); // presigned by the status bundle
    const bytes = Buffer.from(await zip.arrayBuffer());
    expect(view.rows).toEqual({ total: 30, succeeded: 30, failed: 0, rejected: 0 });
    expect(zip.status).toBe(200);
    expect(bytes.subarray(0, 2).toString()).toBe('PK');
    const runs = ecs.calls
      .filter((c) => c.operation === 'RunTask')
      .map((c) => c.input as Record<string, unknown>);
    expect(runs.length).toBeGreaterThan(0);
    for (const run of runs) {
      expect(run).toMatchObject({
        cluster: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/rowfleet-${STAGE}`,
        taskDefinition: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/rowfleet-${STAGE}-worker:1`,
        launchType: 'FARGATE',
        startedBy: token,
        networkConfiguration: { awsvpcConfiguration: { assignPublicIp: 'ENABLED' } },
      });
    }
    expect(ecs.tasks.length).toBeGreaterThan(0);
    // The finalize stops the job's workers through ECS (ListTasks by startedBy, then StopTask of each), after the
    // job's state is final (finishedAt): looked for until it has, not at the moment the view shows the end.
    const listed = await until("the finalize listing the job's tasks", 10_000, () =>
      ecs.calls.find(
        (c) => c.operation === 'ListTasks' && (c.input as { startedBy?: string }).startedBy === token,
      ),
    );
    expect(listed).toEqual({
      operation: 'ListTasks',
      input: expect.objectContaining({ startedBy: token, desiredStatus: 'RUNNING' }),
    });
  }, 150_000);
});
