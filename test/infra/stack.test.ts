import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { getStage, loadConfig } from '../../config/index.ts';
import { API_ROUTES } from '../../config/routes.ts';
import { LAMBDA_RUNTIME } from '../../config/node.ts';
import { JOBS_BY_TIME_INDEX } from '../../config/job-list.ts';
import { tableDefinition } from '../../core/jobs/table.ts';
import { synthStage, type Synthesized } from '../helpers/synth.ts';

/** Statements of the IAM policies attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(template: Template, rolePrefix: string): Record<string, unknown>[] {
  const policies = template.findResources('AWS::IAM::Policy');
  const out: Record<string, unknown>[] = [];
  for (const p of Object.values(policies)) {
    const roles = (p.Properties.Roles ?? []) as { Ref: string }[];
    if (roles.some((r) => r.Ref.startsWith(rolePrefix))) out.push(...p.Properties.PolicyDocument.Statement);
  }
  return out;
}

/** The tests synthesize for account 123456789012 in ap-northeast-1 (see test/helpers/synth.ts): ARNs are literals. */
const reportQueues = (stage: string) => `arn:aws:sqs:ap-northeast-1:123456789012:${stage}-report-*`;
const bucketObjects = (prefix: string, wildcard = '*') =>
  Match.objectLike({
    'Fn::Join': [
      '',
      [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageDataBucket'), 'Arn'] }, `/${prefix}${wildcard}`],
    ],
  });

describe('Stack: Rowfleet-dev', () => {
  let s: Synthesized;
  let template: Template;

  beforeAll(() => {
    // Prepare, Act: one synth for the whole file
    s = synthStage('dev');
    template = s.template;
  });
  afterAll(() => s.cleanup());

  it("answers API Gateway's own refusals in the API's error shape, each with its code", () => {
    // Act
    const responses = Object.values(template.findResources('AWS::ApiGateway::GatewayResponse')).map(
      (r) => r.Properties as { ResponseType: string; ResponseTemplates: Record<string, string> },
    );

    // Assess: the template is the API's error body once API Gateway's variables are filled in
    const bodies = Object.fromEntries(
      responses.map((r) => [
        r.ResponseType,
        JSON.parse(
          r.ResponseTemplates['application/json']!.replace(/\$context\.error\.messageString/g, '"m"').replace(
            /\$context\.requestId/g,
            'id',
          ),
        ) as { error: { code: string } },
      ]),
    );
    expect(Object.fromEntries(Object.entries(bodies).map(([type, b]) => [type, b.error.code]))).toEqual({
      UNAUTHORIZED: 'UNAUTHENTICATED',
      ACCESS_DENIED: 'FORBIDDEN',
      BAD_REQUEST_BODY: 'INVALID_REQUEST',
      BAD_REQUEST_PARAMETERS: 'INVALID_REQUEST',
      THROTTLED: 'THROTTLED',
    });
  });

  describe('IAM scoping', () => {
    it("limits the worker task role to the stage report queues, its parts and a job's sources, the table's partitions it uses, finalize and grant requests, bulk mail, and span export", () => {
      // Act
      const statements = statementsOf(template, 'WorkersTaskDefinitionTaskRole');

      // Assess
      expect(statements).toEqual([
        // Spans of the chunk attempts (OTLP to X-Ray): no resource-level permission exists for it.
        { Sid: 'TraceExport', Effect: 'Allow', Action: 'xray:PutTraceSegments', Resource: '*' },
        {
          Sid: 'JobQueues',
          Effect: 'Allow',
          Action: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
          ],
          Resource: reportQueues('dev'),
        },
        expect.objectContaining({ Sid: 'JobParts', Action: 's3:PutObject' }),
        expect.objectContaining({ Sid: 'JobSources', Action: 's3:GetObject' }),
        expect.objectContaining({ Sid: 'SourceRanges', Action: 's3:GetObject' }),
        expect.objectContaining({
          Sid: 'JobTable',
          Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^StorageTable/), 'Arn'] },
          Condition: {
            'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SITE#*', 'BUDGET', 'RATE#*'] },
          },
        }),
        expect.objectContaining({
          Sid: 'FinalizeRequests',
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^StorageFinalizeQueue/), 'Arn'] },
        }),
        expect.objectContaining({
          Sid: 'GrantRequests',
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^StorageUploadEventsQueue/), 'Arn'] },
        }),
        {
          Sid: 'BulkMail',
          Effect: 'Allow',
          Action: 'ses:SendEmail',
          Resource: `arn:aws:ses:ap-northeast-1:123456789012:identity/${getStage('dev').mail.identity}`,
          Condition: {
            StringEquals: { 'ses:FromAddress': loadConfig().sites.map((site) => site.bulkMail!.from) },
          },
        },
      ]);
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: Match.stringLikeRegexp('^WorkersTaskDefinitionTaskRole') }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Sid: 'JobParts', Resource: bucketObjects('jobs/*/parts/') }),
            Match.objectLike({
              Sid: 'JobSources',
              Resource: [
                bucketObjects('jobs/*/rejected.jsonl', ''),
                bucketObjects('jobs/*/source.csv', ''),
                bucketObjects('jobs/*/source.utf8.csv', ''),
              ],
            }),
            Match.objectLike({ Sid: 'SourceRanges', Resource: bucketObjects('uploads/') }),
          ]),
        },
      });
    });

    it("gives the workers' claims and rate limiter no DynamoDB action beyond GetItem and UpdateItem", () => {
      // Act
      const actions = statementsOf(template, 'WorkersTaskDefinitionTaskRole').flatMap(
        (st) => st.Action as string[],
      );

      // Assess: no PutItem, DeleteItem, Query, Scan or batch action; SES only to send
      expect(actions.filter((a) => a.startsWith('dynamodb:'))).toEqual([
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
      ]);
      expect(actions.filter((a) => a.startsWith('ses:'))).toEqual(['ses:SendEmail']);
    });

    it('never grants results/ or another stage to the workers', () => {
      // Act
      const text = JSON.stringify(statementsOf(template, 'WorkersTaskDefinitionTaskRole'));

      // Assess
      expect(text).not.toContain('results/');
      expect(text).not.toMatch(/(stg|prod)-report/);
    });

    it('lets upload create, tag and fill the stage report queues and launch workers of its task definition only', () => {
      // Act, Assess
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: Match.stringLikeRegexp('^UploadFunctionRole') }],
        PolicyDocument: {
          // arrayWith matches in order: the order CDK writes the grants in
          Statement: Match.arrayWith([
            Match.objectLike({
              Action: 'sqs:SendMessage',
              Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageFinalizeQueue'), 'Arn'] },
            }),
            Match.objectLike({
              Action: ['sqs:CreateQueue', 'sqs:SendMessage', 'sqs:TagQueue'],
              Resource: reportQueues('dev'),
            }),
            Match.objectLike({
              Action: 'ecs:RunTask',
              Resource: 'arn:aws:ecs:ap-northeast-1:123456789012:task-definition/rowfleet-dev-worker:*',
              Condition: {
                ArnEquals: {
                  'ecs:cluster': { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersCluster'), 'Arn'] },
                },
              },
            }),
            Match.objectLike({
              Action: 'iam:PassRole',
              Resource: [
                { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersTaskDefinitionExecutionRole'), 'Arn'] },
                { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersTaskDefinitionTaskRole'), 'Arn'] },
              ],
              Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
            }),
          ]),
        },
      });
    });

    it('lets finalize delete report queues and list/stop tasks of the worker cluster only', () => {
      // Act, Assess
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: Match.stringLikeRegexp('^FinalizeFunctionRole') }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Action: ['sqs:DeleteQueue', 'sqs:GetQueueUrl'],
              Resource: reportQueues('dev'),
            }),
            Match.objectLike({
              Action: 'ecs:ListTasks',
              Resource: '*',
              Condition: {
                ArnEquals: {
                  'ecs:cluster': { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersCluster'), 'Arn'] },
                },
              },
            }),
            Match.objectLike({ Action: 'ecs:StopTask' }),
          ]),
        },
      });
      const finalize = JSON.stringify(statementsOf(template, 'FinalizeFunctionRole'));
      expect(finalize).not.toContain('ecs:RunTask');
      expect(finalize).not.toContain('iam:PassRole');
      // It reads jobs/ (parts) and uploads/ (a stopped job's source, for its unprocessed records), writes results/
      // and the failed records' numbers, deletes the parts, and deletes the job's budget demand.
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: Match.stringLikeRegexp('^FinalizeFunctionRole') }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Action: 's3:GetObject',
              // results/: a retry's attempt copies the zip before it into its own.
              Resource: [bucketObjects('jobs/'), bucketObjects('results/'), bucketObjects('uploads/')],
            }),
            Match.objectLike({
              Action: ['s3:AbortMultipartUpload', 's3:PutObject'],
              Resource: [bucketObjects('jobs/*/failed.jsonl', ''), bucketObjects('results/')],
            }),
            Match.objectLike({ Action: 's3:DeleteObject', Resource: bucketObjects('jobs/*/parts/') }),
            // Query: a stopped job's effect claims (one Query of its site partition).
            Match.objectLike({
              Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
            }),
          ]),
        },
      });
    });

    it('keeps status and the authorizer read-only', () => {
      // Act
      const status = statementsOf(template, 'StatusFunctionRole');
      const authorizer = statementsOf(template, 'AuthorizerFunctionRole');

      // Assess
      const actions = (sts: Record<string, unknown>[]) =>
        sts.flatMap((st) => [st.Action].flat() as string[]).filter((a) => !a.startsWith('logs:'));
      expect(actions(status)).toEqual(
        expect.arrayContaining(['s3:GetObject', 'dynamodb:GetItem', 'dynamodb:Query']),
      );
      for (const a of [...actions(status), ...actions(authorizer)]) {
        expect(a).not.toMatch(/Put|Update|Delete|Send|Create|RunTask|StopTask/);
      }
      expect(status).toContainEqual(
        expect.objectContaining({ Action: 's3:GetObject', Resource: expect.anything() }),
      );
      expect(JSON.stringify(status)).toContain('/results/*');
      expect(JSON.stringify(authorizer)).not.toContain('s3:');
    });

    it('has no statement allowing "*" on "*"', () => {
      // Act
      const policies = template.findResources('AWS::IAM::Policy');
      const all = Object.values(policies).flatMap(
        (p) => p.Properties.PolicyDocument.Statement as Record<string, unknown>[],
      );

      // Assess
      for (const st of all) {
        const actions = [st.Action].flat() as string[];
        const resources = [st.Resource].flat();
        expect(actions.some((a) => a === '*' || a.endsWith(':*')) && resources.includes('*')).toBe(false);
      }
    });
  });

  describe('event sources', () => {
    it('feeds the finalize function from the finalize queue with partial batch responses', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageFinalizeQueue'), 'Arn'] },
        FunctionName: { Ref: Match.stringLikeRegexp('^FinalizeFunction') },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 1,
      });
    });

    it('feeds the upload function from the upload-events queue', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageUploadEventsQueue'), 'Arn'] },
        FunctionName: { Ref: Match.stringLikeRegexp('^UploadFunction') },
      });
    });

    it('sends ObjectCreated events under uploads/ to the upload-events queue', () => {
      template.hasResourceProperties('Custom::S3BucketNotifications', {
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              Events: ['s3:ObjectCreated:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } },
              QueueArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageUploadEventsQueue'), 'Arn'] },
            },
          ],
        },
      });
    });

    it('gives each consumer queue a visibility timeout above its function timeout and the shared DLQ', () => {
      const fns = template.findResources('AWS::Lambda::Function');
      const timeout = (prefix: string) =>
        Object.entries(fns).find(([id]) => id.startsWith(prefix))![1].Properties.Timeout as number;
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: 'dev-finalize',
        VisibilityTimeout: Match.anyValue(),
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageDeadLetterQueue'), 'Arn'] },
          maxReceiveCount: 5,
        },
      });
      const queues = template.findResources('AWS::SQS::Queue');
      const visibility = (name: string) =>
        Object.values(queues).find((q) => q.Properties.QueueName === name)!.Properties
          .VisibilityTimeout as number;
      expect(visibility('dev-finalize')).toBeGreaterThan(timeout('FinalizeFunction'));
      expect(visibility('dev-upload-events')).toBeGreaterThan(timeout('UploadFunction'));
    });
  });

  describe('encryption and TLS', () => {
    it('encrypts every queue (SSE-SQS) and refuses non-TLS access to each', () => {
      const queues = template.findResources('AWS::SQS::Queue');
      expect(Object.keys(queues)).toHaveLength(4);
      for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
      const policies = template.findResources('AWS::SQS::QueuePolicy', {
        Properties: {
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        },
      });
      const covered = Object.values(policies).flatMap((p) =>
        (p.Properties.Queues as { Ref: string }[]).map((q) => q.Ref),
      );
      expect(covered.sort()).toEqual(Object.keys(queues).sort());
    });

    it('blocks public access, encrypts and enforces TLS on both buckets, with access logs and retention', () => {
      const buckets = template.findResources('AWS::S3::Bucket');
      for (const b of Object.values(buckets)) {
        expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        });
        expect(
          b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault,
        ).toEqual({
          SSEAlgorithm: 'AES256',
        });
      }
      const tlsOnly = template.findResources('AWS::S3::BucketPolicy', {
        Properties: {
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        },
      });
      expect(Object.keys(tlsOnly)).toHaveLength(2);
      const days = getStage('dev').limits.retentionDays;
      template.hasResourceProperties('AWS::S3::Bucket', {
        LoggingConfiguration: {
          DestinationBucketName: { Ref: Match.stringLikeRegexp('^StorageLogBucket') },
          LogFilePrefix: 'data-bucket/',
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith(
            ['uploads/', 'jobs/', 'results/'].map((prefix) =>
              Match.objectLike({ Prefix: prefix, ExpirationInDays: days, Status: 'Enabled' }),
            ),
          ),
        },
      });
    });

    it('encrypts both topics with a rotating customer managed key and refuses non-TLS publishing', () => {
      template.resourceCountIs('AWS::SNS::Topic', 2);
      template.allResourcesProperties('AWS::SNS::Topic', {
        KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^MonitoringTopicKey'), 'Arn'] },
      });
      template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      template.allResourcesProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    });

    it('keeps the job table on demand with point-in-time recovery and TTL on expiresAt', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: { SSEEnabled: true },
      });
    });
  });

  describe('functions', () => {
    it('runs every function on nodejs24.x/arm64 with its own log group and the Powertools settings', () => {
      const fns = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) =>
        /^(Upload|Status|Finalize|Authorizer|UsageMail)Function/.test(id),
      );
      expect(fns).toHaveLength(5);
      for (const [, fn] of fns) {
        expect(fn.Properties).toMatchObject({
          Runtime: LAMBDA_RUNTIME,
          Architectures: ['arm64'],
          Handler: 'index.handler',
          LoggingConfig: { LogGroup: { Ref: expect.stringMatching(/LogGroup/) } },
          Environment: {
            Variables: expect.objectContaining({
              POWERTOOLS_SERVICE_NAME: 'rowfleet',
              POWERTOOLS_METRICS_NAMESPACE: 'Rowfleet',
              NODE_OPTIONS: '--enable-source-maps',
            }),
          },
        });
      }
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: '/rowfleet/dev/lambda/upload',
        RetentionInDays: getStage('dev').infra.logRetentionDays,
      });
    });

    it('runs every Node.js function of the template on it, custom resource handlers included', () => {
      const runtimes = Object.entries(template.findResources('AWS::Lambda::Function')).map(
        ([id, fn]) => [id, fn.Properties.Runtime as string] as const,
      );
      // The CDK's S3 bucket-notifications handler is inline Python (its runtime is the CDK's, not a Node one).
      const node = runtimes.filter(([id]) => !id.startsWith('BucketNotificationsHandler'));
      expect(node.length).toBeGreaterThanOrEqual(6);
      expect(node.filter(([, runtime]) => runtime !== LAMBDA_RUNTIME)).toEqual([]);
    });

    it('gives upload, status and finalize the resource env, and upload/finalize the ECS launcher env', () => {
      const resourceEnv = {
        STAGE: 'dev',
        BUCKET_NAME: { Ref: Match.stringLikeRegexp('^StorageDataBucket') },
        TABLE_NAME: { Ref: Match.stringLikeRegexp('^StorageTable') },
        FINALIZE_QUEUE_URL: { Ref: Match.stringLikeRegexp('^StorageFinalizeQueue') },
        DLQ_ARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageDeadLetterQueue'), 'Arn'] },
      };
      const launcherEnv = {
        CLUSTER_ARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersCluster'), 'Arn'] },
        TASK_DEFINITION_ARN: { Ref: Match.stringLikeRegexp('^WorkersTaskDefinition') },
        WORKER_CONTAINER_NAME: 'worker',
        WORKER_SUBNET_IDS: Match.anyValue(),
        WORKER_SECURITY_GROUP_IDS: {
          'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersTaskSecurityGroup'), 'GroupId'],
        },
        WORKER_ASSIGN_PUBLIC_IP: 'ENABLED',
      };
      for (const name of ['Upload', 'Finalize']) {
        template.hasResourceProperties('AWS::Lambda::Function', {
          Description: Match.stringLikeRegexp(name === 'Upload' ? 'upload' : 'finalize'),
          Environment: { Variables: Match.objectLike({ ...resourceEnv, ...launcherEnv }) },
        });
      }
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('job status'),
        Environment: { Variables: Match.objectLike(resourceEnv) },
      });
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('authorizer'),
        Environment: {
          Variables: Match.objectLike({ TABLE_NAME: { Ref: Match.stringLikeRegexp('^StorageTable') } }),
        },
      });
    });
  });

  describe('API', () => {
    it('is a REST API with binary CSV bodies, throttling and JSON access logs naming the site', () => {
      template.hasResourceProperties('AWS::ApiGateway::RestApi', {
        Name: 'rowfleet-dev',
        BinaryMediaTypes: Match.arrayWith(['text/csv', 'application/octet-stream']),
      });
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        StageName: 'dev',
        AccessLogSetting: {
          DestinationArn: Match.anyValue(),
          Format: Match.stringLikeRegexp('"site":"\\$context.authorizer.site"'),
        },
        MethodSettings: [
          Match.objectLike({
            ThrottlingRateLimit: getStage('dev').infra.apiRateLimit,
            ThrottlingBurstLimit: getStage('dev').infra.apiBurstLimit,
            LoggingLevel: 'ERROR',
            DataTraceEnabled: false,
          }),
        ],
      });
    });

    it('puts the token authorizer and a request validator on every route but GET /health and the console', () => {
      const methods = template.findResources('AWS::ApiGateway::Method');
      const byAuth = Object.values(methods).map((m) => m.Properties.AuthorizationType as string);
      expect(byAuth.filter((a) => a === 'CUSTOM')).toHaveLength(API_ROUTES.filter((r) => r.auth).length);
      expect(byAuth.filter((a) => a === 'NONE')).toHaveLength(3);
      for (const m of Object.values(methods)) {
        if (m.Properties.AuthorizationType === 'CUSTOM') {
          expect(m.Properties.AuthorizerId).toEqual({ Ref: expect.stringMatching(/^ApiAuthorizer/) });
          expect(m.Properties.RequestValidatorId).toEqual({ Ref: expect.stringMatching(/^ApiValidator/) });
          expect(m.Properties.Integration.Type).toBe('AWS_PROXY');
        }
      }
      template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
        Type: 'REQUEST',
        IdentitySource: 'method.request.header.Authorization',
      });
      template.hasResourceProperties('AWS::ApiGateway::Method', {
        HttpMethod: 'POST',
        RequestModels: { 'application/json': { Ref: Match.stringLikeRegexp('UploadsRequest') } },
      });
    });

    it("declares the GET routes' query parameters from core's schemas: from and to of GET /usage required", () => {
      const methods = Object.values(template.findResources('AWS::ApiGateway::Method')).filter(
        (m) => m.Properties.HttpMethod === 'GET',
      );
      const params = methods.map(
        (m) => m.Properties.RequestParameters as Record<string, boolean> | undefined,
      );
      expect(params).toContainEqual({
        'method.request.path.token': true,
        'method.request.querystring.limit': false,
        'method.request.querystring.offset': false,
      });
      expect(params).toContainEqual({
        'method.request.querystring.from': true,
        'method.request.querystring.to': true,
      });
    });

    it('serves the console from a function with no AWS access, its CSP naming the bucket, under the API', () => {
      // Act
      const statements = statementsOf(template, 'ConsoleFunctionRole');
      const [, fn] = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) =>
        id.startsWith('ConsoleFunction'),
      )!;

      // Assess: its role writes its own logs, nothing else
      for (const st of statements)
        expect([st.Action].flat().every((a) => String(a).startsWith('logs:'))).toBe(true);
      expect(fn.Properties.Environment.Variables).toEqual({
        UPLOAD_ORIGIN: {
          'Fn::Join': [
            '',
            [
              'https://',
              { 'Fn::GetAtt': [expect.stringMatching(/^StorageDataBucket/), 'RegionalDomainName'] },
            ],
          ],
        },
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'rowfleet',
        POWERTOOLS_METRICS_NAMESPACE: 'Rowfleet',
      });
      template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'console' });
      template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' });
    });

    it("lets the bucket take presigned POSTs from the browser on the API's origin only (CORS)", () => {
      template.hasResourceProperties('AWS::S3::Bucket', {
        CorsConfiguration: {
          CorsRules: [
            {
              AllowedMethods: ['POST'],
              AllowedHeaders: ['*'],
              AllowedOrigins: [
                {
                  'Fn::Join': [
                    '',
                    [
                      'https://',
                      { Ref: Match.stringLikeRegexp('^Api[0-9A-F]{8}$') },
                      '.execute-api.ap-northeast-1.',
                      { Ref: 'AWS::URLSuffix' },
                    ],
                  ],
                },
              ],
              MaxAge: 3600,
            },
          ],
        },
      });
    });
  });

  describe('workers', () => {
    it('runs the worker on Fargate from the Dockerfile with a graceful stop, awslogs and the worker env', () => {
      template.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Family: 'rowfleet-dev-worker',
        RequiresCompatibilities: ['FARGATE'],
        RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
        ContainerDefinitions: [
          Match.objectLike({
            Name: 'worker',
            StopTimeout: 120,
            ReadonlyRootFilesystem: true,
            LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
            Environment: Match.arrayWith(
              ['STAGE', 'BUCKET_NAME', 'TABLE_NAME', 'FINALIZE_QUEUE_URL', 'DLQ_ARN'].map((name) =>
                Match.objectLike({ Name: name }),
              ),
            ),
          }),
        ],
      });
      template.hasResourceProperties('AWS::ECS::Cluster', {
        ClusterName: 'rowfleet-dev',
        ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
      });
    });

    it('has no NAT gateway: public subnets, gateway endpoints, a task security group without ingress', () => {
      template.resourceCountIs('AWS::EC2::NatGateway', 0);
      template.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
      template.hasResourceProperties('AWS::EC2::SecurityGroup', {
        SecurityGroupEgress: [
          Match.objectLike({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' }),
        ],
        SecurityGroupIngress: Match.absent(),
      });
    });
  });

  describe('reaper and job outcomes', () => {
    const fnNamed = (prefix: string) => {
      const fns = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) =>
        id.startsWith(prefix),
      );
      expect(fns).toHaveLength(1);
      return fns[0]!;
    };
    const policyOf = (logicalId: string) => {
      const fn = template.findResources('AWS::Lambda::Function')[logicalId]!;
      const role = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const statements = Object.values(template.findResources('AWS::IAM::Policy'))
        .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === role))
        .flatMap(
          (p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[],
        );
      return statements;
    };

    it('runs the reaper every 5 minutes', () => {
      // Prepare
      const [logicalId] = fnNamed('ReaperFunction');

      // Act
      const schedules = Object.values(
        template.findResources('AWS::Scheduler::Schedule', { Properties: { Name: 'dev-reaper' } }),
      );

      // Assess
      expect(schedules).toHaveLength(1);
      expect(schedules[0]!.Properties.ScheduleExpression).toBe('rate(5 minutes)');
      expect(JSON.stringify(schedules[0]!.Properties.Target.Arn)).toContain(logicalId);
    });

    it('lets the reaper query only the active-jobs index, by its exact ARN', () => {
      // Act
      const statements = policyOf(fnNamed('ReaperFunction')[0]);
      const onIndexes = statements.filter((st) => JSON.stringify(st.Resource).includes('/index/'));

      // Assess
      expect(onIndexes).toHaveLength(1);
      expect(onIndexes[0]!.Action).toBe('dynamodb:Query');
      expect(JSON.stringify(onIndexes[0]!.Resource)).toContain('/index/active');
      expect(JSON.stringify(statements)).not.toContain('/index/*');
    });

    it("lets the status function query only the index of each site's jobs by time, declared as locally", () => {
      // Act
      const statements = policyOf(fnNamed('StatusFunction')[0]);
      const onIndexes = statements.filter((st) => JSON.stringify(st.Resource).includes('/index/'));
      const table = Object.values(template.findResources('AWS::DynamoDB::Table'))[0]!;
      const local = tableDefinition('t');
      const declared = (table.Properties.GlobalSecondaryIndexes as { IndexName: string }[]).find(
        (i) => i.IndexName === JOBS_BY_TIME_INDEX.name,
      );

      // Assess
      expect(onIndexes).toHaveLength(1);
      expect(onIndexes[0]!.Action).toBe('dynamodb:Query');
      expect(JSON.stringify(onIndexes[0]!.Resource)).toContain(`/index/${JOBS_BY_TIME_INDEX.name}`);
      expect(declared).toEqual(
        local.GlobalSecondaryIndexes!.find((i) => i.IndexName === JOBS_BY_TIME_INDEX.name),
      );
    });

    it('lets finalize and upload publish job outcomes, with the topic in their environment', () => {
      for (const prefix of ['FinalizeFunction', 'UploadFunction']) {
        // Prepare
        const [logicalId, fn] = fnNamed(prefix);

        // Act
        const env = fn.Properties.Environment.Variables as Record<string, unknown>;
        const publish = policyOf(logicalId).filter((st) => st.Action === 'sns:Publish');

        // Assess
        expect(env.JOBS_TOPIC_ARN).toBeDefined();
        expect(publish).toHaveLength(1);
        expect(publish[0]!.Resource).toEqual(env.JOBS_TOPIC_ARN);
      }
    });
  });

  describe('usage mail', () => {
    const sites = loadConfig().sites;
    const usageMailFunction = () => {
      const fns = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) =>
        id.startsWith('UsageMailFunction'),
      );
      expect(fns).toHaveLength(1);
      return fns[0]!;
    };

    it('has exactly one schedule per configured site, each naming its site and nothing else', () => {
      // Act
      const schedules = Object.values(
        template.findResources('AWS::Scheduler::Schedule', {
          Properties: { Name: Match.stringLikeRegexp('^dev-usagemail-') },
        }),
      );
      const inputs = schedules.map((s) => JSON.parse(s.Properties.Target.Input as string) as object);

      // Assess
      expect(schedules).toHaveLength(sites.length);
      expect(inputs).toEqual(
        expect.arrayContaining(
          sites.map((site) => ({ site: site.id, scheduledTime: '<aws.scheduler.scheduled-time>' })),
        ),
      );
      expect(new Set(inputs.map((i) => JSON.stringify(i))).size).toBe(sites.length);
    });

    it.each(sites.map((s) => s.id))(
      'fires %s at 07:00 Asia/Tokyo at the usage-mail function, with retries and the schedules DLQ',
      (id) => {
        // Prepare
        const [logicalId] = usageMailFunction();

        // Act, Assess
        template.hasResourceProperties('AWS::Scheduler::Schedule', {
          Name: `dev-usagemail-${id}`,
          GroupName: 'rowfleet-dev',
          ScheduleExpression: 'cron(0 7 * * ? *)',
          ScheduleExpressionTimezone: 'Asia/Tokyo',
          State: 'ENABLED',
          Target: {
            Arn: { 'Fn::GetAtt': [logicalId, 'Arn'] },
            Input: `{"site":"${id}","scheduledTime":"<aws.scheduler.scheduled-time>"}`,
            RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesRole'), 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 7200 },
            DeadLetterConfig: {
              Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesDeadLetterQueue'), 'Arn'] },
            },
          },
        });
      },
    );

    it('lets the scheduler role invoke the usage-mail function', () => {
      // Prepare
      const [logicalId] = usageMailFunction();

      // Act
      const statements = statementsOf(template, 'SchedulesRole');

      // Assess
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: 'lambda:InvokeFunction',
          Resource: expect.arrayContaining([{ 'Fn::GetAtt': [logicalId, 'Arn'] }]),
        }),
      );
    });

    it('gives the function only the table (read, put, update) and ses:SendEmail on the stage identity from its address', () => {
      // Act
      const statements = statementsOf(template, 'UsageMailFunctionRole').filter(
        (st) => !([st.Action].flat() as string[]).every((a) => a.startsWith('logs:')),
      );
      const mail = getStage('dev').mail;

      // Assess
      expect(statements).toEqual([
        {
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^StorageTable/), 'Arn'] },
          // Its site's partition only: usage counters and mail markers.
          Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SITE#*'] } },
        },
        {
          Effect: 'Allow',
          Action: 'ses:SendEmail',
          Resource: `arn:aws:ses:ap-northeast-1:123456789012:identity/${mail.identity}`,
          Condition: { StringEquals: { 'ses:FromAddress': mail.from } },
        },
      ]);
      const text = JSON.stringify(statements);
      for (const forbidden of ['s3:', 'sqs:', 'ecs:', 'iam:PassRole', 'dynamodb:DeleteItem', 'dynamodb:Scan'])
        expect(text).not.toContain(forbidden);
    });

    it('sets only STAGE and TABLE_NAME for the code, with its own log group', () => {
      // Act
      const [, fn] = usageMailFunction();

      // Assess
      expect(fn.Properties.Environment.Variables).toEqual({
        STAGE: 'dev',
        TABLE_NAME: { Ref: expect.stringMatching(/^StorageTable/) },
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'rowfleet',
        POWERTOOLS_METRICS_NAMESPACE: 'Rowfleet',
      });
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: '/rowfleet/dev/lambda/usageMail',
      });
    });
  });
});
