import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { derivedTimings, type InfraConfig, type MailConfig, type Timings } from '../config/index.ts';
import { METRIC_NAMESPACE, POWERTOOLS_SERVICE_NAME } from './metrics.ts';
import { KEY_PREFIXES, reportQueuePrefix, resourceNames, TABLE_PARTITIONS } from '../config/names.ts';
import { acknowledge, acknowledgeFindings, arnFinding, escapeRegExp } from './nag.ts';
import { PROJECT_ROOT } from './paths.ts';
import { TRACE_EXPORT_ACK, TRACE_EXPORT_STATEMENT } from './tracing.ts';
import { ENV } from '../config/env.ts';

/** The worker's container name; RunTask overrides address it (WORKER_CONTAINER_NAME). */
export const WORKER_CONTAINER_NAME = 'worker';

/**
 * The worker image's build context, as an allow-list: everything is excluded but what the build stage copies
 * (lock file, npm settings, tsconfig, and the sources the worker imports). Nothing else reaches the Docker
 * build or the asset hash, so editing tests, docs, the CDK app or the local runtime never rebuilds the image.
 * /.dockerignore holds the same list for a plain `docker build` (test/infra checks they agree).
 */
export const WORKER_IMAGE_EXCLUDE = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!.npmrc',
  '!tsconfig.json',
  '!config',
  '!core',
  '!fargate-worker',
  '!processors',
  '**/node_modules',
  '**/*.test.ts',
] as const;

export interface WorkersProps {
  readonly stage: string;
  readonly infra: InfraConfig;
  /** The stage's timings: the worker's graceful-stop window follows the chunk visibility. */
  readonly timings: Timings;
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  readonly finalizeQueue: sqs.IQueue;
  /** Where a worker that leaves asks for a granter pass of the worker budget (the upload-events queue). */
  readonly grantRequestsQueue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** Receives the VPC flow logs. */
  readonly logBucket: s3.IBucket;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
  /** The stage's SES identity, which the `mail` processor sends through. */
  readonly mail: MailConfig;
  /** The sites' bulk-mail From addresses (config/sites.ts `bulkMail.from`, within the identity). @default none */
  readonly bulkMailSenders?: readonly string[];
}

/**
 * The Fargate row workers: a VPC (public subnets that map no public IP on launch, or isolated subnets with
 * interface endpoints: infra.workerNetwork; no NAT gateway either way), the cluster, the task definition
 * built from fargate-worker/Dockerfile, and the security group of the tasks (no inbound, HTTPS out).
 * Tasks are standalone RunTask tasks started by the upload function (EcsTaskLauncher in core/aws).
 */
export class Workers extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly securityGroup: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  /** The environment EcsTaskLauncher reads (core/aws/ecs-launcher.ts). */
  readonly launcherEnv: Record<string, string>;

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);
    const names = resourceNames(props.stage);

    // infra.workerNetwork (docs/DEPLOY.md, "Networking"). `public`: public subnets that map no public IP on launch
    // (nothing started in them gets an address by default); each task asks for one in RunTask and reaches SQS, ECR
    // and CloudWatch Logs through the internet gateway, with no NAT gateway to pay for. `private`: isolated subnets
    // and interface endpoints, no public address at all. S3 and DynamoDB go through free gateway endpoints in both.
    // Nothing can connect in: the security group has no inbound rule.
    const isPrivate = props.infra.workerNetwork === 'private';
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [
        isPrivate
          ? { name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 }
          : {
              name: 'public',
              subnetType: ec2.SubnetType.PUBLIC,
              cidrMask: 20,
              mapPublicIpOnLaunch: false,
            },
      ],
      gatewayEndpoints: {
        s3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        dynamodb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      restrictDefaultSecurityGroup: false,
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toS3(props.logBucket, 'vpc-flow-logs/'),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: `Rowfleet ${props.stage} workers: no inbound, HTTPS to AWS APIs only`,
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'HTTPS to SQS, S3, DynamoDB, ECR and CloudWatch Logs',
    );

    // Private workers: what the task calls beyond S3 and DynamoDB, through interface endpoints (private DNS, reachable from
    // the workers on 443): SQS (job queues, finalize and grant requests), ECR (image pulls: api and dkr; the
    // layers come from S3 through its gateway endpoint), CloudWatch Logs (awslogs driver; metrics go as EMF there)
    // and the SES API (the `mail` processor). Each is paid per AZ and hour: docs/DEPLOY.md "Networking".
    if (isPrivate) {
      // Reachable from the workers only (not the whole VPC CIDR, the endpoints' default).
      const endpointGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc: this.vpc,
        description: `Rowfleet ${props.stage} interface endpoints: HTTPS from the workers only`,
        allowAllOutbound: false,
      });
      endpointGroup.addIngressRule(this.securityGroup, ec2.Port.tcp(443), 'HTTPS from the workers');
      for (const [id, service] of [
        ['Sqs', ec2.InterfaceVpcEndpointAwsService.SQS],
        ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
        ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
        ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
        ['Email', ec2.InterfaceVpcEndpointAwsService.EMAIL],
      ] as const) {
        this.vpc.addInterfaceEndpoint(`${id}Endpoint`, {
          service,
          privateDnsEnabled: true,
          securityGroups: [endpointGroup],
          open: false,
        });
      }
    }

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      clusterName: names.cluster,
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    const arm = props.infra.workerArchitecture === 'ARM64';
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: names.workerFamily,
      cpu: props.infra.workerCpu,
      memoryLimitMiB: props.infra.workerMemoryMiB,
      runtimePlatform: {
        cpuArchitecture: arm ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      logGroupName: names.logGroup('worker'),
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });

    this.container = this.taskDefinition.addContainer('Worker', {
      containerName: WORKER_CONTAINER_NAME,
      image: ecs.ContainerImage.fromAsset(PROJECT_ROOT, {
        file: 'fargate-worker/Dockerfile',
        exclude: [...WORKER_IMAGE_EXCLUDE],
        platform: arm ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
      }),
      // SIGTERM → the worker finishes the chunks in hand → exit; SIGKILL only after this (ECS allows ≤ 120 s).
      stopTimeout: Duration.seconds(derivedTimings(props.timings).workerStopTimeoutSeconds),
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'worker',
        logGroup: this.logGroup,
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
      }),
      environment: {
        [ENV.stage]: props.stage,
        [ENV.bucket]: props.bucket.bucketName,
        [ENV.table]: props.table.tableName,
        [ENV.finalizeQueueUrl]: props.finalizeQueue.queueUrl,
        [ENV.grantRequestsQueueUrl]: props.grantRequestsQueue.queueUrl,
        [ENV.dlqArn]: props.deadLetterQueue.queueArn,
        POWERTOOLS_SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        // Worker-start and chunk-attempt spans to X-Ray's OTLP endpoint (core/aws/tracing.ts).
        [ENV.tracing]: 'otlp',
      },
    });

    this.grantWorkerAccess(props);

    this.launcherEnv = {
      [ENV.cluster]: this.cluster.clusterArn,
      [ENV.taskDefinition]: this.taskDefinition.taskDefinitionArn,
      [ENV.workerContainer]: WORKER_CONTAINER_NAME,
      [ENV.workerSubnets]: (isPrivate ? this.vpc.isolatedSubnets : this.vpc.publicSubnets)
        .map((s) => s.subnetId)
        .join(','),
      [ENV.workerSecurityGroups]: this.securityGroup.securityGroupId,
      // Public subnets map no address on launch: a public task asks for its own (it pulls its image through the
      // internet gateway); a private one reaches everything through the endpoints.
      [ENV.workerAssignPublicIp]: isPrivate ? 'DISABLED' : 'ENABLED',
    };

    acknowledge(this.taskDefinition, {
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds resource names only (bucket, table, queue URL, DLQ ARN); no secrets. Job identity comes as RunTask overrides.',
    });
    acknowledgeFindings(this.taskDefinition.obtainExecutionRole(), {
      rule: 'AwsSolutions-IAM5',
      match: /^Resource::\*$/,
      reason:
        'ecr:GetAuthorizationToken supports no resource-level permission (AWS requires "*"); image pulls and log writes are scoped to the asset repository and the worker log group.',
    });
  }

  /**
   * The task role: this stage's job queues, the job's parts (write) and sources and rejected records under jobs/
   * and uploads/ (read), the job table (GetItem and UpdateItem on the site, budget and rate-limit partitions: chunk
   * counts, side-effect claims, budget places, rate-limit windows), finalize and grant requests, bulk mail.
   * test/infra/iam.test.ts checks every call a worker makes against these, and that each is used.
   */
  private grantWorkerAccess(props: WorkersProps): void {
    const role = this.taskDefinition.taskRole;
    // The worker's spans (ROWFLEET_TRACING=otlp above).
    role.addToPrincipalPolicy(TRACE_EXPORT_STATEMENT());
    acknowledgeFindings(role, TRACE_EXPORT_ACK);
    const reportQueues = Stack.of(this).formatArn({
      service: 'sqs',
      resource: `${reportQueuePrefix(props.stage)}*`,
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'JobQueues',
        actions: [
          'sqs:GetQueueUrl',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
        ],
        resources: [reportQueues],
      }),
    );
    // Chunk parts are written under jobs/<site>/<token>/parts/; a chunk's range is read from the job's source
    // moved to jobs/ (presigned uploads) or from its UTF-8 copy, its rejected records (skipped) from
    // rejected.jsonl (core/jobs/keys.ts).
    const jobFile = (name: string) => props.bucket.arnForObjects(`${KEY_PREFIXES.jobs}*/${name}`);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'JobParts',
        actions: ['s3:PutObject'],
        resources: [jobFile('parts/*')],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'JobSources',
        actions: ['s3:GetObject'],
        resources: [jobFile('source.csv'), jobFile('source.utf8.csv'), jobFile('rejected.jsonl')],
      }),
    );
    // Chunks are byte ranges of the UTF-8 source: the upload itself when it is UTF-8 (read-only).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SourceRanges',
        actions: ['s3:GetObject'],
        resources: [props.bucket.arnForObjects(`${KEY_PREFIXES.uploads}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'JobTable',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [props.table.tableArn],
        // The job's site's items, the budget, the stage's rate-limit windows: every call names its partition.
        conditions: {
          'ForAllValues:StringLike': {
            'dynamodb:LeadingKeys': [
              `${TABLE_PARTITIONS.site}*`,
              TABLE_PARTITIONS.budget,
              `${TABLE_PARTITIONS.rateWindow}*`,
            ],
          },
        },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FinalizeRequests',
        actions: ['sqs:SendMessage'],
        resources: [props.finalizeQueue.queueArn],
      }),
    );
    // A worker that leaves gives its budget place back (JobTable above) and asks for a granter pass here.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'GrantRequests',
        actions: ['sqs:SendMessage'],
        resources: [props.grantRequestsQueue.queueArn],
      }),
    );
    // The `mail` processor: SendEmail through the stage's identity, from the sites' own senders only. Its
    // side-effect claims and the stage's rate limiter need no more than the JobTable actions above.
    const senders = [...new Set(props.bulkMailSenders ?? [])];
    if (senders.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'BulkMail',
          actions: ['ses:SendEmail'],
          resources: [
            Stack.of(this).formatArn({
              service: 'ses',
              resource: 'identity',
              resourceName: props.mail.identity,
            }),
          ],
          conditions: { StringEquals: { 'ses:FromAddress': senders } },
        }),
      );
    }
    acknowledgeFindings(
      role,
      {
        rule: 'AwsSolutions-IAM5',
        match: arnFinding('sqs', `${escapeRegExp(reportQueuePrefix(props.stage))}\\*`),
        reason: `Workers read the per-job queues the split creates at run time (${reportQueuePrefix(props.stage)}<sha1(token)>); the wildcard covers only this stage's job queues.`,
      },
      {
        rule: 'AwsSolutions-IAM5',
        match:
          /^Resource::<[A-Za-z0-9]+\.Arn>\/(uploads\/\*|jobs\/\*\/(parts\/\*|source\.csv|source\.utf8\.csv|rejected\.jsonl))$/,
        reason:
          'Workers read their chunk ranges of the job source (uploads/, or the source moved to or copied as UTF-8 under jobs/<site>/<token>/) and its rejected records, and write chunk parts under jobs/<site>/<token>/parts/; the keys exist only at run time. Nothing under results/ is reachable.',
      },
    );
  }

  /** RunTask of this task definition on this cluster, tagging the tasks, and passing its two roles. */
  grantRun(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    const family = stack.formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${this.taskDefinition.family}:*`,
    });
    const run = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:RunTask'],
      resourceArns: [family],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
    });
    const tag = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:TagResource'],
      resourceArns: [this.taskArns()],
      conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
    });
    const passRoles = iam.Grant.addToPrincipal({
      grantee,
      actions: ['iam:PassRole'],
      resourceArns: [this.taskDefinition.taskRole.roleArn, this.taskDefinition.obtainExecutionRole().roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    });
    return run.combine(tag).combine(passRoles);
  }

  /** DescribeTasks (with tags) on this cluster's tasks only: the reaper lists the tasks of every job. */
  grantDescribe(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:DescribeTasks'],
      resourceArns: [this.taskArns()],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
    });
  }

  /** ListTasks and StopTask on this cluster only. */
  grantStop(grantee: iam.IGrantable): iam.Grant {
    // ListTasks has no task resource: it is scoped by the ecs:cluster condition key.
    const list = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:ListTasks'],
      resourceArns: ['*'],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
    });
    const stop = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:StopTask'],
      resourceArns: [this.taskArns()],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
    });
    return list.combine(stop);
  }

  private taskArns(): string {
    return Stack.of(this).formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${this.cluster.clusterName}/*`,
    });
  }
}
