import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV } from '../../config/env.ts';

/**
 * Recording of the AWS calls a process makes (test/infra/iam.test.ts): with ROWFLEET_RECORD_AWS_CALLS=<dir>, every
 * client made here records each distinct call as the IAM request AWS would authorize — the role making it (see
 * {@link awsRole}), the IAM action (not the SDK command: HeadObject is s3:GetObject, DeleteObjects one
 * s3:DeleteObject per key…), the resource ARN with the template's placeholders for partition, region and account,
 * and the condition keys the grants narrow by — one JSON line each in `<dir>/calls-<pid>.jsonl`. Off (the
 * default), no middleware is added at all.
 */
export const RECORD_AWS_CALLS_ENV = 'ROWFLEET_RECORD_AWS_CALLS';

/** One AWS call as IAM sees it. */
export interface AwsCall {
  /** The function (lib/rowfleet-stack.ts FUNCTION_ENTRIES name) or `worker`; `local` for the local runtime's own. */
  readonly role: string;
  /** `s3:GetObject`, `dynamodb:UpdateItem`… */
  readonly action: string;
  /** `arn:${AWS::Partition}:s3:::<bucket>/<key>`, `arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:<queue>`… */
  readonly resource: string;
  /** Condition keys of the request (dynamodb:LeadingKeys, s3:prefix, ses:FromAddress). */
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
}

const roleScope = new AsyncLocalStorage<string>();

/**
 * Runs `fn` as the role `role`: the local runtime runs the functions of several roles in one process (the reaper,
 * the usage mail, the authorizer; every function unless isolated), and says whose call each one is.
 */
export function asAwsRole<T>(role: string, fn: () => T): T {
  return roleScope.run(role, fn);
}

/**
 * The role the calls of this code run under, from what the process knows: the role it was given by
 * {@link asAwsRole}; a worker (RunTask overrides, or the local launcher, give it SITE and JOB_TOKEN); an isolated
 * local function (ROWFLEET_FUNCTION, local/functions.ts); else `local` (the local runtime itself).
 */
export function awsRole(env: NodeJS.ProcessEnv = process.env): string {
  return roleScope.getStore() ?? (env[ENV.jobToken] ? 'worker' : env[ENV.functionName]) ?? 'local';
}

const recorded = new Set<string>();

/** Records calls made outside a client's `send` (presigned POST policies): a no-op unless recording is on. */
export function recordAwsCall(call: Omit<AwsCall, 'role'>): void {
  const dir = process.env[RECORD_AWS_CALLS_ENV];
  if (!dir) return;
  const line = JSON.stringify({ role: awsRole(), ...call });
  if (recorded.has(line)) return;
  recorded.add(line);
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, `calls-${process.pid}.jsonl`), `${line}\n`);
}

const PLACEHOLDERS = '${AWS::Region}:${AWS::AccountId}';
const arn = (service: string, resource: string) =>
  `arn:\${AWS::Partition}:${service}:${PLACEHOLDERS}:${resource}`;
const s3Arn = (bucket: string, key?: string) =>
  `arn:\${AWS::Partition}:s3:::${bucket}${key === undefined ? '' : `/${key}`}`;
/** A queue's name from its URL (…/<account>/<name>) or an ARN. */
const queueName = (urlOrArn: string) => urlOrArn.split(/[/:]/).pop() ?? urlOrArn;

type Input = Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** The partition key value of a DynamoDB key or item, marshalled or not. */
function leadingKey(item: unknown): string | undefined {
  const pk = (item as { pk?: unknown } | undefined)?.pk;
  if (typeof pk === 'string') return pk;
  const s = (pk as { S?: unknown } | undefined)?.S;
  return typeof s === 'string' ? s : undefined;
}

/** The partition key value a Query's key condition names (`pk = :v`, or the index's partition key). */
function queriedKey(input: Input): string | undefined {
  const m = /(?:^|\s)#?pk\s*=\s*(:\w+)/.exec(str(input.KeyConditionExpression));
  const values = (input.ExpressionAttributeValues ?? {}) as Record<string, unknown>;
  return m ? leadingKey({ pk: values[m[1]!] }) : undefined;
}

function tableCall(
  action: string,
  table: string,
  key: string | undefined,
  index?: string,
): Omit<AwsCall, 'role'> {
  return {
    action: `dynamodb:${action}`,
    resource: arn('dynamodb', `table/${table}${index ? `/index/${index}` : ''}`),
    ...(key !== undefined ? { context: { 'dynamodb:LeadingKeys': [key] } } : {}),
  };
}

/** The IAM requests of one SDK command (a command may need several: CopyObject, DeleteObjects, transactions). */
export function iamRequests(service: string, command: string, input: Input): Omit<AwsCall, 'role'>[] {
  const op = command.replace(/Command$/, '');
  switch (service) {
    case 's3': {
      const bucket = str(input.Bucket);
      const key = str(input.Key);
      const object = (action: string, k = key) => ({ action: `s3:${action}`, resource: s3Arn(bucket, k) });
      switch (op) {
        case 'HeadObject':
        case 'GetObject':
          return [object('GetObject')];
        case 'PutObject':
        case 'CreateMultipartUpload':
        case 'UploadPart':
        case 'CompleteMultipartUpload':
          return [object('PutObject')];
        case 'CopyObject': {
          // CopySource is `<bucket>/<key>`, URL-encoded: reading the source, writing the destination.
          const source = decodeURIComponent(str(input.CopySource).replace(/^\//, ''));
          const slash = source.indexOf('/');
          const read = {
            action: 's3:GetObject',
            resource: s3Arn(source.slice(0, slash), source.slice(slash + 1)),
          };
          return [read, object('PutObject')];
        }
        case 'DeleteObject':
          return [object('DeleteObject')];
        case 'DeleteObjects': {
          const objects = (input.Delete as { Objects?: { Key?: string }[] } | undefined)?.Objects ?? [];
          return objects.map((o) => object('DeleteObject', o.Key ?? ''));
        }
        case 'ListObjectsV2':
        case 'ListObjects':
          return [
            {
              action: 's3:ListBucket',
              resource: s3Arn(bucket),
              ...(input.Prefix !== undefined ? { context: { 's3:prefix': str(input.Prefix) } } : {}),
            },
          ];
        case 'HeadBucket':
          return [{ action: 's3:ListBucket', resource: s3Arn(bucket) }];
        default:
          return [{ action: `s3:${op}`, resource: key ? s3Arn(bucket, key) : s3Arn(bucket) }];
      }
    }
    case 'dynamodb': {
      const table = str(input.TableName);
      const action =
        {
          Get: 'GetItem',
          Put: 'PutItem',
          Update: 'UpdateItem',
          Delete: 'DeleteItem',
          BatchGet: 'BatchGetItem',
          BatchWrite: 'BatchWriteItem',
        }[op] ?? op;
      switch (action) {
        case 'GetItem':
        case 'UpdateItem':
        case 'DeleteItem':
          return [tableCall(action, table, leadingKey(input.Key))];
        case 'PutItem':
          return [tableCall(action, table, leadingKey(input.Item))];
        case 'Query': {
          const index = str(input.IndexName) || undefined;
          return [tableCall(action, table, index ? undefined : queriedKey(input), index)];
        }
        case 'TransactWriteItems':
        case 'TransactWrite':
          return ((input.TransactItems ?? []) as Record<string, Input>[]).flatMap((item) =>
            Object.entries(item).map(([kind, i]) =>
              tableCall(
                {
                  Put: 'PutItem',
                  Update: 'UpdateItem',
                  Delete: 'DeleteItem',
                  ConditionCheck: 'ConditionCheckItem',
                }[kind] ?? kind,
                str(i.TableName),
                leadingKey(i.Key ?? i.Item),
              ),
            ),
          );
        case 'BatchGetItem':
        case 'BatchWriteItem':
          return Object.keys((input.RequestItems ?? {}) as Input).map((t) => tableCall(action, t, undefined));
        default:
          return [tableCall(action, table, undefined)];
      }
    }
    case 'sqs': {
      const action = op.replace(/Batch$/, '');
      if (op === 'ListQueues') return [{ action: 'sqs:ListQueues', resource: '*' }];
      const name = input.QueueUrl ? queueName(str(input.QueueUrl)) : str(input.QueueName);
      const call = { action: `sqs:${action}`, resource: arn('sqs', name) };
      // Tags given at creation need sqs:TagQueue as well.
      return op === 'CreateQueue' && input.tags ? [call, { ...call, action: 'sqs:TagQueue' }] : [call];
    }
    case 'sns':
      return [{ action: `sns:${op}`, resource: arn('sns', str(input.TopicArn).split(':').pop() ?? '') }];
    case 'sesv2':
    case 'ses': {
      const from = str(input.FromEmailAddress);
      const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
      return [
        {
          action: `ses:${op}`,
          resource: arn('ses', `identity/${address.slice(address.indexOf('@') + 1)}`),
          context: { 'ses:FromAddress': address },
        },
      ];
    }
    case 'ecs': {
      // Calls that name the cluster are authorized on it (ecs:cluster); the task ARNs come from RunTask's answer.
      const cluster = str(input.cluster);
      const context = { 'ecs:cluster': cluster };
      const taskArn = (task: string) =>
        task.startsWith('arn:') ? task : arn('ecs', `task/${cluster.split('/').pop()}/${task}`);
      switch (op) {
        case 'RunTask': {
          const td = str(input.taskDefinition);
          const run = {
            action: 'ecs:RunTask',
            resource: td.startsWith('arn:') ? td : arn('ecs', `task-definition/${td}`),
            context,
          };
          // Tags at launch: ecs:TagResource on the new tasks, as part of RunTask.
          const tag = {
            action: 'ecs:TagResource',
            resource: taskArn('new-task'),
            context: { 'ecs:CreateAction': 'RunTask' },
          };
          return input.tags ? [run, tag] : [run];
        }
        case 'StopTask':
          return [{ action: 'ecs:StopTask', resource: taskArn(str(input.task)), context }];
        case 'DescribeTasks':
          return ((input.tasks ?? []) as string[]).map((t) => ({
            action: 'ecs:DescribeTasks',
            resource: taskArn(t),
            context,
          }));
        default:
          return [{ action: `ecs:${op}`, resource: '*', context }];
      }
    }
    default:
      return [{ action: `${service}:${op}`, resource: '*' }];
  }
}

/**
 * IAM enforced locally (the stretch of issue 21): with ROWFLEET_ENFORCE_IAM=<file>, every call of a known role is
 * simulated against that role's policies as the stage's template has them (the file: {@link EnforcedPolicies},
 * written from a synthesized template, e.g. by test/infra/iam.test.ts) and refused with AccessDenied (403) when
 * AWS would refuse it; a read of a missing key answers 403, not 404, without s3:ListBucket, as on AWS. Calls of the
 * local runtime itself (role `local`) are not checked. Needs the dev dependency @cloud-copilot/iam-simulate.
 */
export const ENFORCE_IAM_ENV = 'ROWFLEET_ENFORCE_IAM';

export interface EnforcedPolicies {
  /** Account of the principals and resources. */
  readonly account: string;
  /** Each role's principal ARN and identity policies. */
  readonly roles: Readonly<
    Record<string, { readonly principal: string; readonly policies: readonly unknown[] }>
  >;
  /** Resource policies (bucket, queue, topic, key), by the ARN they govern (an object ARN: its bucket's). */
  readonly resources: readonly { readonly arn: string; readonly policy: unknown }[];
  /** Literal replacements from a recorded ARN to the template's (placeholders, local names). */
  readonly rename: readonly (readonly [string, string])[];
}

/** A recorded ARN (or condition value) as the template names it. */
export function renameArn(text: string, rename: EnforcedPolicies['rename']): string {
  return rename.reduce((t, [from, to]) => t.replaceAll(from, to), text);
}

let enforced: { readonly file: string; readonly policies: EnforcedPolicies } | undefined;
const decisions = new Map<string, Promise<string | undefined>>();

/** Why AWS would refuse the call (`ImplicitlyDenied`…), or undefined when it allows it or the role is not checked. */
function refusal(role: string, call: Omit<AwsCall, 'role'>): Promise<string | undefined> {
  const file = process.env[ENFORCE_IAM_ENV];
  if (!file) return Promise.resolve(undefined);
  if (enforced?.file !== file) {
    enforced = { file, policies: JSON.parse(readFileSync(file, 'utf8')) as EnforcedPolicies };
    decisions.clear();
  }
  const p = enforced.policies;
  const who = p.roles[role];
  if (!who) return Promise.resolve(undefined);
  const resource = renameArn(call.resource, p.rename);
  const context = Object.fromEntries(
    Object.entries(call.context ?? {}).map(([k, v]) => [
      k,
      typeof v === 'string' ? renameArn(v, p.rename) : v,
    ]),
  );
  const key = JSON.stringify([role, call.action, resource, context]);
  let decision = decisions.get(key);
  if (!decision) {
    decision = (async () => {
      // A variable specifier: bundles never include the simulator (a dev dependency, loaded only when enforcing).
      const simulator = '@cloud-copilot/iam-simulate';
      const { runSimulation } = (await import(simulator)) as {
        runSimulation: (
          s: unknown,
          o: unknown,
        ) => Promise<{ resultType: string; overallResult?: string; errors?: unknown }>;
      };
      const bucket = resource.startsWith('arn:aws:s3:::') ? resource.split('/')[0] : resource;
      const resourcePolicy = p.resources.find((r) => r.arn === bucket || r.arn === resource)?.policy;
      const r = await runSimulation(
        {
          request: {
            principal: who.principal,
            action: call.action,
            resource: { resource, accountId: p.account },
            contextVariables: { 'aws:SecureTransport': 'true', ...context },
          },
          identityPolicies: who.policies.map((policy, i) => ({ name: `policy${i}`, policy })),
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          ...(resourcePolicy ? { resourcePolicy } : {}),
        },
        {},
      );
      if (r.resultType === 'error') return `not simulated: ${JSON.stringify(r.errors)}`;
      return r.overallResult === 'Allowed' ? undefined : r.overallResult;
    })();
    decisions.set(key, decision);
  }
  return decision;
}

function accessDenied(role: string, call: Omit<AwsCall, 'role'>, why: string): Error {
  return Object.assign(
    new Error(
      `AccessDenied: ${role} may not ${call.action} on ${call.resource} (${why}, ${ENFORCE_IAM_ENV})`,
    ),
    { name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 } },
  );
}

/** Adds the recording (and enforcing) middleware to a client when either is on; the client unchanged otherwise. */
export function recording<C extends { middlewareStack: { add: (...args: never[]) => void } }>(
  client: C,
  service: string,
): C {
  if (!process.env[RECORD_AWS_CALLS_ENV] && !process.env[ENFORCE_IAM_ENV]) return client;
  const stack = client.middlewareStack as unknown as {
    add: (
      mw: (
        next: (args: { input: Input }) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: { input: Input }) => Promise<unknown>,
      options: { step: 'initialize'; name: string; priority: 'high' },
    ) => void;
  };
  stack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const role = awsRole();
      for (const call of iamRequests(service, command, args.input)) {
        recordAwsCall(call);
        const why = await refusal(role, call);
        if (why) throw accessDenied(role, call, why);
      }
      try {
        return await next(args);
      } catch (err) {
        // S3 answers a read of a missing key with 404 only to a caller with s3:ListBucket on the bucket (403
        // otherwise): code that expects the 404 needs that too.
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (service === 's3' && status === 404 && /^(Head|Get)Object/.test(command)) {
          const list = { action: 's3:ListBucket', resource: s3Arn(str(args.input.Bucket)) };
          recordAwsCall(list);
          const why = await refusal(role, list);
          if (why) throw accessDenied(role, list, why);
        }
        throw err;
      }
    },
    { step: 'initialize', name: 'rowfleetRecordAwsCalls', priority: 'high' },
  );
  return client;
}
