/**
 * Least privilege, proven (issue 21): an e2e set of jobs runs on the embedded local runtime with every AWS call
 * recorded as the IAM request it is (core/aws/clients.ts: role, action, resource, condition keys) — direct and
 * presigned uploads, a check (POST /jobs?check=true), a mail job, a full worker budget (a job waits QUEUED and is cancelled there), a killed worker
 * relaunched by the reaper, a cancel, a failure-rate stop, a retry and a retry with nothing to retry, the status
 * routes, a presigned form never used (expired by the reaper), the usage mail. The calls only AWS makes are added
 * from what makes them: the ECS launcher's calls (core/aws/ecs-launcher.ts, run beside the local launcher against
 * a stub ECS), iam:PassRole of the worker's roles, the Lambda service's queue polling (the template's event source
 * mappings), log writes, and the KMS calls SNS makes for a publisher of an encrypted topic. Each distinct call is
 * evaluated with @cloud-copilot/iam-simulate against the synthesized `dev` template: the role's identity policies
 * and the resource's policy (bucket, queue, topic, key policy), conditions included. The test fails on any denied
 * call, and on any granted action no recorded call uses that {@link UNUSED_BY_DESIGN} does not explain.
 */
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { CfnElement, Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localResourceNames } from '../../config/names.ts';
import {
  asAwsRole,
  ENFORCE_IAM_ENV,
  recording,
  renameArn,
  type AwsCall,
  type EnforcedPolicies,
} from '../../core/aws/aws-calls.ts';
import { EcsTaskLauncher } from '../../core/aws/ecs-launcher.ts';
import type { TaskInfo } from '../../core/aws/task-launcher.ts';
import { reportQueueName } from '../../core/jobs/keys.ts';
import type { JobView } from '../../core/intake/operations.ts';
import { isTerminal } from '../../core/jobs/states.ts';
import { reap } from '../../core/reaper/reaper.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { FUNCTION_ENTRIES, type FunctionName } from '../../lib/rowfleet-stack.ts';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { runJob, startJob } from '../../cli/run-job.ts';
import { synthStage, type Synthesized } from '../helpers/synth.ts';

const RECORD_DIR = vi.hoisted(() => {
  // A budget of 2 workers: one two-worker job fills it, so the next one waits QUEUED.
  process.env.ROWFLEET_MAX_WORKERS = '2';
  // With no URL the webhook processor refuses every record (the failure-rate stop).
  delete process.env.ROWFLEET_WEBHOOK_URL;
  const dir = `${process.env.TMPDIR ?? '/tmp'}/rowfleet-iam-calls-${process.pid}`;
  // Every client of this process and of the workers it starts records its calls there.
  process.env.ROWFLEET_RECORD_AWS_CALLS = dir;
  return dir;
});

const ACCOUNT = '123456789012';
const REGION = 'ap-northeast-1';
const LOCAL_STAGE = 'local';
const STAGE = 'dev';

/**
 * Granted actions no local run can use, each with why it is granted. Keys: `<role> <action>`. (Empty means every
 * grant is exercised by a recorded or AWS-made call.)
 */
const UNUSED_BY_DESIGN: Record<string, string> = {
  'upload s3:AbortMultipartUpload':
    'The UTF-8 copy of a source is a multipart upload (Objects.multipart), aborted only when the copy fails part-way.',
  'finalize s3:AbortMultipartUpload':
    'The zip and the large JSONL files are multipart uploads (Objects.multipart), aborted only when one fails part-way.',
  'reaper sqs:CreateQueue':
    "An attempt whose sender died before its last send is sent again (core/budget/attempt-send.ts): its queue is created if the sender died first; no e2e run kills a retry's caller.",
  'reaper sqs:TagQueue':
    'CreateQueue with tags (the queue of an attempt sent again, as above) needs TagQueue too.',
  'reaper sqs:SendMessage':
    'On the job queues: the chunks of an attempt sent again (as above). (Its sends to the finalize queue are used.)',
};

// ---------------------------------------------------------------------------------------------------------------
// The template: roles, their identity policies, resource policies; intrinsics resolved to the local names.

type Json = Record<string, unknown>;
interface Resource {
  readonly Type: string;
  readonly Properties?: Json;
}
interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource: string | string[];
  readonly Condition?: Json;
  readonly Principal?: unknown;
}
interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: Statement[];
}

class TemplateModel {
  readonly resources: Record<string, Resource>;

  constructor(
    template: Json,
    /** Physical names of what CloudFormation names (logical id → name): the local runtime's, for the stage. */
    private readonly names: Record<string, string>,
  ) {
    this.resources = template.Resources as Record<string, Resource>;
  }

  private name(id: string): string {
    const r = this.resources[id];
    const p = r?.Properties ?? {};
    return (
      this.names[id] ??
      ((p.QueueName ?? p.TopicName ?? p.ClusterName ?? p.LogGroupName ?? p.TableName) as
        string | undefined) ??
      id
    );
  }

  arn(id: string): string {
    const r = this.resources[id];
    const n = this.name(id);
    switch (r?.Type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${n}`;
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${n}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${REGION}:${ACCOUNT}:${n}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${REGION}:${ACCOUNT}:${n}`;
      case 'AWS::ECS::Cluster':
        return `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${n}`;
      case 'AWS::ECS::TaskDefinition':
        return `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${r.Properties?.Family as string}:1`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${REGION}:${ACCOUNT}:key/${n}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${ACCOUNT}:role/${n}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${n}:*`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${n}`;
      default:
        return `arn:aws:unknown:${REGION}:${ACCOUNT}:${n}`;
    }
  }

  /** What `Ref` answers: ARNs for topics and task definitions, URLs for queues, names otherwise. */
  ref(id: string): string {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': REGION,
      'AWS::AccountId': ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    if (pseudo[id]) return pseudo[id];
    const type = this.resources[id]?.Type;
    if (type === 'AWS::SNS::Topic' || type === 'AWS::ECS::TaskDefinition') return this.arn(id);
    if (type === 'AWS::SQS::Queue') return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.name(id)}`;
    return this.name(id);
  }

  resolve(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => this.resolve(x));
    if (!v || typeof v !== 'object') return v;
    const o = v as Json;
    if (typeof o.Ref === 'string') return this.ref(o.Ref);
    if (Array.isArray(o['Fn::GetAtt'])) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      if (attr === 'Arn') return this.arn(id);
      return `${this.name(id)}.${attr}`;
    }
    if (Array.isArray(o['Fn::Join'])) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => String(this.resolve(p))).join(sep);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, this.resolve(x)]));
  }

  /** The identity policies attached to a role (its AWS::IAM::Policy resources and inline policies). */
  identityPolicies(roleId: string): PolicyDocument[] {
    const out: PolicyDocument[] = [];
    for (const r of Object.values(this.resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue;
      const roles = (r.Properties?.Roles ?? []) as { Ref?: string }[];
      if (roles.some((x) => x.Ref === roleId))
        out.push(this.resolve(r.Properties!.PolicyDocument) as PolicyDocument);
    }
    const role = this.resources[roleId]!;
    for (const p of (role.Properties?.Policies ?? []) as { PolicyDocument: unknown }[])
      out.push(this.resolve(p.PolicyDocument) as PolicyDocument);
    expect(role.Properties?.ManagedPolicyArns ?? []).toEqual([]);
    return out;
  }

  /** Every resource policy with the ARN it governs (a bucket policy: the bucket's, for its objects too). */
  resourcePolicies(): { arn: string; policy: PolicyDocument }[] {
    const out: { arn: string; policy: PolicyDocument }[] = [];
    for (const [id, r] of Object.entries(this.resources)) {
      const p = r.Properties ?? {};
      const policy = () => this.resolve(p.PolicyDocument) as PolicyDocument;
      if (r.Type === 'AWS::S3::BucketPolicy')
        out.push({ arn: `arn:aws:s3:::${String(this.resolve(p.Bucket))}`, policy: policy() });
      if (r.Type === 'AWS::SQS::QueuePolicy')
        for (const url of this.resolve(p.Queues) as string[])
          out.push({ arn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${url.split('/').pop()!}`, policy: policy() });
      if (r.Type === 'AWS::SNS::TopicPolicy')
        for (const arn of this.resolve(p.Topics) as string[]) out.push({ arn, policy: policy() });
      if (r.Type === 'AWS::KMS::Key')
        out.push({ arn: this.arn(id), policy: this.resolve(p.KeyPolicy) as PolicyDocument });
    }
    return out;
  }

  /** The resource policy that governs `arn`: the bucket's, the queue's, the topic's or the key's. */
  resourcePolicy(arn: string): PolicyDocument | undefined {
    for (const r of Object.values(this.resources)) {
      const p = r.Properties ?? {};
      if (r.Type === 'AWS::S3::BucketPolicy') {
        const bucket = `arn:aws:s3:::${String(this.resolve(p.Bucket))}`;
        if (arn === bucket || arn.startsWith(`${bucket}/`))
          return this.resolve(p.PolicyDocument) as PolicyDocument;
      }
      if (r.Type === 'AWS::SQS::QueuePolicy') {
        const names = (this.resolve(p.Queues) as string[]).map((u) => u.split('/').pop());
        if (arn.startsWith('arn:aws:sqs:') && names.includes(arn.split(':').pop()))
          return this.resolve(p.PolicyDocument) as PolicyDocument;
      }
      if (r.Type === 'AWS::SNS::TopicPolicy' && (this.resolve(p.Topics) as string[]).includes(arn))
        return this.resolve(p.PolicyDocument) as PolicyDocument;
    }
    for (const id of Object.keys(this.resources)) {
      const r = this.resources[id]!;
      if (r.Type === 'AWS::KMS::Key' && this.arn(id) === arn)
        return this.resolve(r.Properties!.KeyPolicy) as PolicyDocument;
    }
    return undefined;
  }
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\/]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
const logicalId = (c: { node: { defaultChild?: unknown } }) =>
  Stack.of(c as never).getLogicalId(c.node.defaultChild as CfnElement);

// ---------------------------------------------------------------------------------------------------------------
// The run.

let dir = '';
let rt: LocalRuntime;
let synth: Synthesized;
let model: TemplateModel;
const roleIds: Record<string, string> = {};
const tokens: Record<string, string> = {};
const notes: string[] = [];

/** ECS calls the launcher would make, for the role that asks the local launcher; it answers with the local tasks. */
let shadowTasks: TaskInfo[] = [];
const ECS_PLACEHOLDER = 'arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}';
function shadowEcs(): EcsTaskLauncher {
  const client = recording(
    new ECSClient({ region: REGION, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    'ecs',
  );
  let n = 0;
  const task = () => `${ECS_PLACEHOLDER}:task/rowfleet-${STAGE}/task${++n}`;
  const taskOf = (t: TaskInfo) => `${ECS_PLACEHOLDER}:task/rowfleet-${STAGE}/${t.id}`;
  // The stub answers after the recording middleware saw the call: the ECS answers the launcher needs.
  client.middlewareStack.add(
    (_next, context) => (args) => {
      const input = args.input as { count?: number };
      const output: Record<string, unknown> = {
        RunTaskCommand: { tasks: Array.from({ length: input.count ?? 1 }, () => ({ taskArn: task() })) },
        ListTasksCommand: { taskArns: shadowTasks.length ? shadowTasks.map(taskOf) : [task()] },
        DescribeTasksCommand: {
          tasks: shadowTasks.map((t) => ({
            taskArn: taskOf(t),
            tags: [
              { key: 'site', value: t.site },
              { key: 'token', value: t.token },
            ],
          })),
        },
        StopTaskCommand: {},
      };
      return Promise.resolve({
        output: { $metadata: {}, ...(output[context.commandName!] as object) },
        response: {},
      });
    },
    { step: 'initialize', name: 'stubEcs', priority: 'low' },
  );
  return new EcsTaskLauncher(
    () => ({
      cluster: `${ECS_PLACEHOLDER}:cluster/rowfleet-${STAGE}`,
      taskDefinition: `${ECS_PLACEHOLDER}:task-definition/rowfleet-${STAGE}-worker:1`,
      containerName: 'worker',
      subnets: ['subnet-1'],
      securityGroups: ['sg-1'],
      assignPublicIp: true,
    }),
    client,
  );
}

async function api<T>(site: string, method: string, path: string, body?: string | Buffer, type?: string) {
  const res = await fetch(rt.apiUrl + path, {
    method,
    headers: { authorization: `Bearer ${tokens[site]}`, ...(type ? { 'content-type': type } : {}) },
    body,
  });
  return { status: res.status, body: (await res.json()) as T };
}

function waitFor(site: string, token: string, until: (v: JobView) => boolean, timeoutMs = 60_000) {
  return vi.waitFor(
    async () => {
      const { body } = await api<JobView>(site, 'GET', `/jobs/${token}`);
      if (!until(body)) throw new Error(`job ${token}: timed out at ${JSON.stringify(body)}`);
      return body;
    },
    { timeout: timeoutMs, interval: 100 },
  );
}

const reaperPass = (o: Parameters<typeof reap>[1] = {}) => asAwsRole('reaper', () => reap(rt.deps, o));

beforeAll(async () => {
  rmSync(RECORD_DIR, { recursive: true, force: true });
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-iam-'));
  synth = synthStage(STAGE);
  const stack = synth.stack;
  const names = localResourceNames(STAGE);
  model = new TemplateModel(synth.template.toJSON() as Json, {
    [logicalId(stack.storage.bucket)]: names.bucket,
    [logicalId(stack.storage.table)]: names.table,
    [logicalId(stack.monitoring.jobsTopic)]: names.jobsTopic,
  });
  roleIds.worker = logicalId(stack.workers.taskDefinition.taskRole as never);
  for (const name of Object.keys(FUNCTION_ENTRIES) as FunctionName[])
    roleIds[name] = logicalId(stack.functions[name].role as never);
  // The run enforces the template's policies (core/aws/clients.ts): a call AWS would refuse fails where it is made.
  const enforced: EnforcedPolicies = {
    account: ACCOUNT,
    roles: Object.fromEntries(
      Object.entries(roleIds).map(([role, id]) => [
        role,
        { principal: `arn:aws:iam::${ACCOUNT}:role/${id}`, policies: model.identityPolicies(id) },
      ]),
    ),
    resources: model.resourcePolicies(),
    rename: RENAME,
  };
  writeFileSync(join(dir, 'policies.json'), JSON.stringify(enforced));
  process.env[ENFORCE_IAM_ENV] = join(dir, 'policies.json');
  rt = await LocalRuntime.start({ stateDir: join(dir, 'state'), reaperSeconds: 0 });
  // The local launcher's callers also run the ECS launcher against a stub, as the role they run as.
  const ecs = shadowEcs();
  const l = rt.launcher;
  const [launch, stop, listTasks] = [l.launch.bind(l), l.stop.bind(l), l.list.bind(l)];
  l.launch = async (req) => (await ecs.launch(req), launch(req));
  l.stop = async (site, token) => (await ecs.stop(site, token), stop(site, token));
  l.list = async () => {
    shadowTasks = await listTasks();
    await ecs.list();
    return shadowTasks;
  };
  for (const site of ['sakai', 'kawasaki']) tokens[site] = await rt.tokenFor(site);
}, 120_000);

afterAll(async () => {
  await rt?.stop();
  delete process.env[ENFORCE_IAM_ENV];
  synth?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
  rmSync(RECORD_DIR, { recursive: true, force: true });
});

async function runScenarios(): Promise<void> {
  const out = join(dir, 'out');
  const file = async (name: string, rows: number, options?: { email: boolean }) => {
    const f = join(dir, name);
    await writeSampleCsv(f, rows, 'utf-8', options);
    return f;
  };
  const run = async (site: string, f: string, extra: Partial<Parameters<typeof runJob>[0]> = {}) =>
    runJob({
      apiUrl: rt.apiUrl,
      apiToken: tokens[site]!,
      file: f,
      outDir: out,
      directMaxBytes: 1e9,
      progress: false,
      ...extra,
    });

  // A direct upload and a presigned one (directMaxBytes 0), both to the end; the status routes.
  const direct = await run('sakai', await file('direct.csv', 300), { processor: 'json' });
  const presigned = await run('kawasaki', await file('presigned.csv', 200), {
    processor: 'report',
    directMaxBytes: 0,
  });
  expect([direct.state, presigned.state]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  // A source that is not UTF-8 (a UTF-8 copy for the workers) with a record of the wrong column count (rejected).
  const cp932 = join(dir, 'cp932.csv');
  await writeSampleCsv(cp932, 100, 'cp932');
  appendFileSync(cp932, '1,2,3,4,5,6,7,8,9,10,11,12\r\n');
  const converted = await run('sakai', cp932, { processor: 'json' });
  expect(converted.rows.rejected).toBe(1);
  // A file with no content at all: the split (inline for a direct upload) rejects it and announces it.
  const empty = await api<JobView>(
    'sakai',
    'POST',
    '/jobs?processor=json&fileName=empty.csv',
    '\n\n\n',
    'text/csv',
  );
  expect(empty).toMatchObject({ status: 422, body: { state: 'REJECTED' } });
  await api('sakai', 'GET', '/jobs');
  await api('sakai', 'GET', `/jobs/${direct.token}/errors`);
  await api('sakai', 'GET', '/usage');
  // Nothing to retry: 409 (its failed records file is missing: HeadObject answers 404, which needs s3:ListBucket).
  const nothing = await api<{ error: { code: string } }>('sakai', 'POST', `/jobs/${direct.token}/retry`);
  expect(nothing.status).toBe(409);

  // A check of a mail file (POST /jobs?check=true): the budget read, nothing written.
  const checked = await api<{ ok: boolean }>(
    'sakai',
    'POST',
    '/jobs?check=true&processor=mail&fileName=check.csv',
    readFileSync(await file('check.csv', 20, { email: true }), 'utf8'),
    'text/csv',
  );
  expect(checked).toMatchObject({ status: 200, body: { ok: true } });

  // The mail processor: the worker sends through SES.
  const mail = await run('sakai', await file('mail.csv', 20, { email: true }), { processor: 'mail' });
  expect(mail.state).toBe('SUCCEEDED');

  // Every record fails (the webhook processor has no URL) with a code of its own, which no retry runs again: 409
  // after a HeadObject of its missing failed-records file (404 only with s3:ListBucket, 403 without).
  const refused = await run('kawasaki', await file('refused.csv', 30), { processor: 'webhook' });
  expect(refused.rows.failed).toBe(30);
  expect((await api('kawasaki', 'POST', `/jobs/${refused.token}/retry`)).status).toBe(409);
  await api('kawasaki', 'GET', `/jobs/${refused.token}/errors`);
  // Its results.csv (an object of its own: a presigned URL), sent back: the records run in the job's next attempt
  // from the resubmission's own source (written by upload after a Query of the job's effect claims, read by the
  // workers and the finalize), and fail again.
  const results = await api<{ url: string }>('kawasaki', 'GET', `/jobs/${refused.token}/results`);
  expect(results.status).toBe(200);
  const sheet = Buffer.from(await (await fetch(results.body.url)).arrayBuffer());
  const resubmitted = await api('kawasaki', 'POST', `/jobs/${refused.token}/resubmit`, sheet, 'text/csv');
  expect(resubmitted).toMatchObject({ status: 202, body: { attempt: 2, run: 30 } });
  const again = await waitFor('kawasaki', refused.token, (v) => isTerminal(v.state));
  expect(again.attempts.map((a) => a.state)).toEqual(['FAILED', 'FAILED']);

  // The budget full: a long two-worker job, then a second job that waits QUEUED, cancelled there.
  const long = await startJob({
    apiUrl: rt.apiUrl,
    apiToken: tokens.sakai!,
    file: await file('long.csv', 20_000),
    processor: 'json',
    workers: 2,
    simulateDelayMs: 20,
    request: { concurrency: 4 },
    outDir: out,
    directMaxBytes: 1e9,
    progress: false,
  });
  await waitFor('sakai', long.token, (v) => v.state === 'RUNNING' && v.progress.chunksDone >= 1);
  const queued = await startJob({
    apiUrl: rt.apiUrl,
    apiToken: tokens.sakai!,
    file: await file('queued.csv', 50),
    processor: 'json',
    outDir: out,
    directMaxBytes: 1e9,
    progress: false,
  });
  const waiting = await waitFor('sakai', queued.token, (v) => v.state !== 'RECEIVED');
  notes.push(`second job under a full budget: ${waiting.state}`);
  expect((await api('sakai', 'DELETE', `/jobs/${queued.token}`)).status).toBe(202);
  await waitFor('sakai', queued.token, (v) => isTerminal(v.state));

  // A killed worker: the reaper finds the job short of workers and relaunches.
  const pids = rt.launcher.running(long.token);
  expect(pids.length).toBeGreaterThan(0);
  process.kill(pids[0]!, 'SIGKILL');
  for (let i = 0; i < 50 && rt.launcher.running(long.token).length === pids.length; i++)
    await new Promise((r) => setTimeout(r, 100));
  await reaperPass({ graceSeconds: 0 });

  // A cancel whose function died after recording the stop, before asking for the finalize (recorded here as it
  // would have): the reaper finds the job stopped and still running and asks for its finalize, which writes the
  // unprocessed records for a retry, stops the workers and frees the budget.
  await rt.deps.jobs.recordStop('sakai', long.token, {
    reason: 'CANCELLED',
    at: new Date().toISOString(),
    message: 'Cancelled through the API.',
  });
  await reaperPass();
  const cancelled = await waitFor('sakai', long.token, (v) => isTerminal(v.state));
  expect(cancelled.state).toBe('CANCELLED');
  // The retry of the records the cancel left, itself cancelled at once through the API.
  const retry = await api<JobView>('sakai', 'POST', `/jobs/${long.token}/retry`);
  expect(retry.status).toBe(202);
  expect((await api('sakai', 'DELETE', `/jobs/${retry.body.token}`)).status).toBe(202);
  await waitFor('sakai', retry.body.token, (v) => isTerminal(v.state));

  // A failure-rate stop: every webhook record fails.
  const failing = await api<JobView>(
    'sakai',
    'POST',
    '/jobs?processor=webhook&maxFailureRate=0.1&fileName=fail.csv',
    readFileSync(await file('fail.csv', 1000), 'utf8'),
    'text/csv',
  );
  expect(failing.status).toBe(202);
  const failed = await waitFor('sakai', failing.body.token, (v) => isTerminal(v.state));
  expect(failed.error?.code).toBe('FAILURE_RATE_EXCEEDED');

  // A presigned form never used: the reaper expires it (HeadObject of a missing upload).
  const form = await api<{ token: string }>(
    'kawasaki',
    'POST',
    '/uploads',
    JSON.stringify({ fileName: 'never.csv', processor: 'json' }),
    'application/json',
  );
  expect(form.status).toBe(201);
  await reaperPass({ now: new Date(Date.now() + 7 * 24 * 3600 * 1000) });
  // The demand a finalize that died after the job ended leaves behind (written here as that finalize): the
  // reaper's pass grants it, finds the job wants no workers, and deletes it.
  await rt.deps.grants.request({
    site: 'sakai',
    token: direct.token,
    arrivedAt: Date.now(),
    remaining: 10,
    maxWorkers: 1,
  });
  // What a split that died after creating its queue, and a launch for a job that had ended, leave behind (set up
  // here as those would have): the reaper deletes the orphan queue and stops the idle worker.
  await rt.deps.queues.createJobQueue({
    name: reportQueueName(LOCAL_STAGE, direct.token),
    site: 'sakai',
    token: direct.token,
    dlqArn: process.env.DLQ_ARN!,
    timings: rt.deps.timings,
  });
  await rt.launcher.launch({ site: 'sakai', token: direct.token, count: 1 });
  await reaperPass();

  // The usage mail of a site.
  const scheduledTime = new Date().toISOString();
  await rt.usageMail({ site: 'sakai', scheduledTime });
  // Again (a schedule's retry): the marker tells it was sent.
  await rt.usageMail({ site: 'sakai', scheduledTime });
}

/** From a recorded ARN to the template's: placeholders filled, the local stage's names made the dev stage's. */
const RENAME: [string, string][] = (() => {
  const local = localResourceNames(LOCAL_STAGE);
  const dev = localResourceNames(STAGE);
  return [
    ['${AWS::Partition}', 'aws'],
    ['${AWS::Region}', REGION],
    ['${AWS::AccountId}', ACCOUNT],
    [`:::${local.bucket}`, `:::${dev.bucket}`],
    [`:table/${local.table}`, `:table/${dev.table}`],
    [`:${local.jobsTopic}`, `:${dev.jobsTopic}`],
    [`:sqs:${REGION}:${ACCOUNT}:${LOCAL_STAGE}-`, `:sqs:${REGION}:${ACCOUNT}:${STAGE}-`],
  ];
})();

/** Every call recorded, by every process, with the dev stage's names in place of the local ones. */
function recordedCalls(): AwsCall[] {
  const rename = (arn: string) => renameArn(arn, RENAME);
  const calls: AwsCall[] = [];
  for (const f of readdirSync(RECORD_DIR)) {
    for (const line of readFileSync(join(RECORD_DIR, f), 'utf8').split('\n')) {
      if (!line) continue;
      const c = JSON.parse(line) as AwsCall;
      const context = c.context
        ? Object.fromEntries(
            Object.entries(c.context).map(([k, v]) => [k, typeof v === 'string' ? rename(v) : v]),
          )
        : undefined;
      calls.push({ ...c, resource: rename(c.resource), ...(context ? { context } : {}) });
    }
  }
  return calls;
}

/**
 * A call with what varies per job generalized (tokens, queue hashes, part numbers, rate-limit windows, task ids):
 * one distinct call per (role, action, kind of resource, kind of condition value).
 */
const generalize = (text: string) =>
  text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<token>')
    .replace(/\b[0-9a-f]{64}\b/g, '<hash>')
    .replace(/\b[0-9a-f]{40}\b/g, '<hash>')
    .replace(/(?<=[/#]|task)\d+/g, 'N');
const shape = (c: AwsCall) =>
  `${c.role} ${c.action} ${generalize(c.resource)}${c.context ? ` ${generalize(JSON.stringify(c.context))}` : ''}`;

describe('IAM: every AWS call the code makes is allowed by the dev template, and every grant is used', () => {
  it(
    'denies none of the calls of an e2e run and grants nothing unexplained that no call uses',
    { timeout: 240_000 },
    async () => {
      // Act: the e2e run, recorded (and enforced: a refused call fails the run; its calls are judged first below)
      const runError = await runScenarios().then(
        () => undefined,
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 500));
      const recorded = recordedCalls();

      // The template, with the local runtime's physical names for what CloudFormation names.
      const stack = synth.stack;
      // The calls only AWS makes, as the role they are made with.
      const aws: AwsCall[] = [];
      const taskDefinition = model.arn(logicalId(stack.workers.taskDefinition));
      const fnRole = (fnId: string) =>
        Object.entries(roleIds).find(([, id]) =>
          JSON.stringify(model.resources[fnId]?.Properties?.Role).includes(id),
        )?.[0];
      for (const c of recorded.filter((x) => x.action === 'ecs:RunTask')) {
        expect(c.resource.replace(/:\d+$/, ':1')).toBe(taskDefinition);
        for (const role of [
          stack.workers.taskDefinition.taskRole,
          stack.workers.taskDefinition.obtainExecutionRole(),
        ])
          aws.push({
            role: c.role,
            action: 'iam:PassRole',
            resource: model.arn(logicalId(role as never)),
            context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
          });
      }
      for (const [id, r] of Object.entries(model.resources)) {
        // The Lambda service polls each event source queue with the function's role.
        if (r.Type === 'AWS::Lambda::EventSourceMapping') {
          const fnId = (r.Properties!.FunctionName as { Ref: string }).Ref;
          const role = fnRole(fnId);
          expect(role, id).toBeDefined();
          for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'])
            aws.push({
              role: role!,
              action,
              resource: model.resolve(r.Properties!.EventSourceArn) as string,
            });
        }
        // The Lambda runtime writes each function's logs to its log group with its role.
        if (r.Type === 'AWS::Lambda::Function') {
          const role = fnRole(id);
          const group = model.resolve(
            (r.Properties!.LoggingConfig as { LogGroup?: unknown } | undefined)?.LogGroup,
          ) as string | undefined;
          if (!role || !group) continue;
          for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents'])
            aws.push({
              role,
              action,
              resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${group}:log-stream:2026/01/01/[$LATEST]0`,
            });
        }
      }
      // SNS encrypts a message to an SSE-KMS topic with the publisher's credentials.
      for (const c of recorded.filter((x) => x.action === 'sns:Publish')) {
        const topic = Object.entries(model.resources).find(
          ([tid, r]) => r.Type === 'AWS::SNS::Topic' && model.arn(tid) === c.resource,
        );
        const key = topic?.[1].Properties?.KmsMasterKeyId;
        if (!key) continue;
        for (const action of ['kms:GenerateDataKey', 'kms:Decrypt'])
          aws.push({ role: c.role, action, resource: model.resolve(key) as string });
      }

      // Assess: every call, once per distinct (role, action, resource, conditions)
      const calls = [...recorded, ...aws].filter((c) => c.role !== 'local');
      // One call of each shape is evaluated: what varies inside a shape (a token, a part number) no grant tells apart.
      const distinct = new Map<string, AwsCall>();
      for (const c of calls) if (!distinct.has(shape(c))) distinct.set(shape(c), c);
      const unknownRoles = [...new Set(calls.map((c) => c.role))].filter((r) => !roleIds[r]);
      expect(unknownRoles).toEqual([]);

      const denied: string[] = [];
      const policies = new Map(Object.entries(roleIds).map(([r, id]) => [r, model.identityPolicies(id)]));
      for (const c of distinct.values()) {
        const resourcePolicy = model.resourcePolicy(c.resource);
        const simulation: Simulation = {
          request: {
            principal: `arn:aws:iam::${ACCOUNT}:role/${roleIds[c.role]}`,
            action: c.action,
            resource: { resource: c.resource, accountId: ACCOUNT },
            contextVariables: {
              'aws:SecureTransport': 'true',
              ...(c.context as Record<string, string | string[]>),
            },
          },
          identityPolicies: policies.get(c.role)!.map((policy, i) => ({ name: `policy${i}`, policy })),
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          ...(resourcePolicy ? { resourcePolicy } : {}),
        } as Simulation;
        const result = await runSimulation(simulation, {});
        if (result.resultType === 'error') {
          denied.push(`${shape(c)}: simulation error ${JSON.stringify(result.errors)}`);
        } else if (result.overallResult !== 'Allowed') {
          denied.push(`${shape(c)}: ${result.overallResult}`);
        }
      }

      // Every granted (role, statement, action) matched by some call, or explained.
      const unused: string[] = [];
      for (const [role, docs] of policies) {
        const mine = calls.filter((c) => c.role === role);
        for (const s of docs.flatMap((d) => d.Statement).filter((x) => x.Effect === 'Allow')) {
          const resources = list(s.Resource).map(glob);
          for (const action of list(s.Action)) {
            const used = mine.some(
              (c) => glob(action).test(c.action) && resources.some((r) => r.test(c.resource)),
            );
            if (!used && !UNUSED_BY_DESIGN[`${role} ${action}`])
              unused.push(`${role} ${action} on ${list(s.Resource).join(', ')}`);
          }
        }
      }

      const shapes = [...distinct.keys()].sort();
      writeFileSync(join(dir, 'calls.txt'), shapes.join('\n'));
      process.stderr.write(
        `iam: ${calls.length} calls, ${shapes.length} distinct (role, action, resource) from ` +
          `${new Set(calls.map((c) => c.role)).size} roles; ${notes.join('; ')}\n` +
          (process.env.IAM_TEST_VERBOSE ? `${shapes.join('\n')}\n` : ''),
      );
      expect(denied).toEqual([]);
      if (runError) throw runError;
      expect(unused).toEqual([]);
      expect(shapes.length).toBeGreaterThanOrEqual(80);
    },
  );
});
