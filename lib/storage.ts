import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { JOBS_BY_TIME_INDEX } from '../config/job-list.ts';
import { KEY_PREFIXES, resourceNames } from '../config/names.ts';
import { acknowledge, acknowledgeFindings } from './nag.ts';

export interface StorageProps {
  readonly stage: string;
  /** Days before objects under uploads/, jobs/ and results/ expire (limits.retentionDays). */
  readonly retentionDays: number;
  /** Days the S3 access logs and VPC flow logs are kept. */
  readonly logRetentionDays: number;
  /** Keep the table when the stack is deleted and protect it from deletion. */
  readonly retainData: boolean;
  /** Visibility timeout of the upload-events queue: at least the upload function's timeout. */
  readonly uploadEventsVisibility: Duration;
  /** Visibility timeout of the finalize queue: at least the finalize function's timeout. */
  readonly finalizeVisibility: Duration;
  /** Receives of one message before it goes to the dead-letter queue (timings.maxReceiveCount). */
  readonly maxReceiveCount: number;
  /** Encryption of the data bucket (infra.dataEncryption). @default 'S3_MANAGED' */
  readonly dataEncryption?: 'S3_MANAGED' | 'KMS';
}

/** What a role does with the data bucket's objects, for its use of the data key ({@link Storage.grantDataKey}). */
export interface DataKeyUse {
  /** GetObject (and CopyObject's source, presigned GET URLs it signs). */
  readonly read?: boolean;
  /** PutObject, multipart uploads, CopyObject's target, presigned POST forms it signs. */
  readonly write?: boolean;
}

/**
 * The stage's state: the data bucket (with its access-log bucket), the job table, the finalize queue, the
 * upload-events queue fed by S3 notifications for uploads/, and the shared dead-letter queue.
 */
export class Storage extends Construct {
  readonly logBucket: s3.Bucket;
  readonly bucket: s3.Bucket;
  readonly table: dynamodb.Table;
  readonly deadLetterQueue: sqs.Queue;
  readonly finalizeQueue: sqs.Queue;
  readonly uploadEventsQueue: sqs.Queue;
  /** The data bucket's customer-managed key (infra.dataEncryption `KMS`); undefined with SSE-S3. */
  readonly dataKey?: kms.Key;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const names = resourceNames(props.stage);

    // Buckets are always retained: deleting a stack must never delete results; lifecycle rules empty them.
    this.logBucket = new s3.Bucket(this, 'LogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED, // server access logs cannot be delivered to SSE-KMS buckets
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(props.logRetentionDays) }],
    });
    acknowledge(this.logBucket, {
      id: 'AwsSolutions-S1',
      reason:
        'This is the access-log bucket itself; logging it into itself would loop and another log bucket adds nothing.',
    });

    // The CSV files hold personal data. With `KMS`, every object is encrypted under a key of this stage: its use is
    // logged in CloudTrail, only the roles granted below can decrypt, and disabling the key locks the data. S3 Bucket
    // Keys make S3 ask KMS once per bucket-level data key instead of once per object (KMS requests ~99 % fewer).
    if (props.dataEncryption === 'KMS') {
      this.dataKey = new kms.Key(this, 'DataKey', {
        description: `Rowfleet ${props.stage}: data bucket (uploads/, jobs/, results/)`,
        enableKeyRotation: true,
        // Objects encrypted under a deleted key are lost: the key outlives the stack as the bucket does.
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }
    this.bucket = new s3.Bucket(this, 'DataBucket', {
      ...(this.dataKey
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: this.dataKey, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'data-bucket/',
      lifecycleRules: [
        ...Object.values(KEY_PREFIXES).map((prefix) => ({
          id: `expire-${prefix.replace('/', '')}`,
          prefix,
          expiration: Duration.days(props.retentionDays),
        })),
        { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expiresAt',
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: props.retainData,
      removalPolicy: props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    // Sparse index of jobs in flight (only RUNNING/FINALIZING jobs carry `active`): the reaper's query
    // (core/jobs/table.ts defines the same index for the local runtime).
    this.table.addGlobalSecondaryIndex({
      indexName: 'active',
      partitionKey: { name: 'active', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
    });
    // Each site's jobs by time, with the listing's fields only: GET /jobs reads one page of it (config/job-list.ts).
    this.table.addGlobalSecondaryIndex({
      indexName: JOBS_BY_TIME_INDEX.name,
      partitionKey: { name: JOBS_BY_TIME_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: JOBS_BY_TIME_INDEX.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...JOBS_BY_TIME_INDEX.projected],
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: names.dlq,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, {
      id: 'AwsSolutions-SQS3',
      reason:
        'This is the shared dead-letter queue of the stage; a dead-letter queue of its own would never be read.',
    });
    const deadLetterQueue = { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount };

    this.finalizeQueue = new sqs.Queue(this, 'FinalizeQueue', {
      queueName: names.finalizeQueue,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: props.finalizeVisibility,
      deadLetterQueue,
    });

    this.uploadEventsQueue = new sqs.Queue(this, 'UploadEventsQueue', {
      queueName: names.uploadEventsQueue,
      // SSE-SQS: S3 can deliver notifications to it (an SSE-KMS queue with the AWS managed key cannot be used).
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: props.uploadEventsVisibility,
      deadLetterQueue,
    });
    this.bucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.SqsDestination(this.uploadEventsQueue),
      { prefix: KEY_PREFIXES.uploads },
    );
    // CDK configures bucket notifications through its own singleton function (BucketNotificationsHandler…).
    const handler = Stack.of(this).node.children.find((c) =>
      c.node.id.startsWith('BucketNotificationsHandler'),
    );
    if (!handler) throw new Error('Storage: the bucket notifications handler was not found');
    acknowledgeFindings(handler, {
      rule: 'AwsSolutions-IAM4',
      match: /^Policy::arn:.*:iam::aws:policy\/service-role\/AWSLambdaBasicExecutionRole$/,
      reason:
        'CDK-provided deployment-time function that writes the bucket notification configuration; AWSLambdaBasicExecutionRole only lets it write its own logs.',
    });
  }

  /**
   * The data key's use for a role that reads or writes the data bucket (nothing with SSE-S3). S3 calls KMS with the
   * caller's credentials: no SDK call of ours names KMS, yet GetObject needs kms:Decrypt and PutObject
   * kms:GenerateDataKey (multipart uploads, which the finalize's zip and the split's UTF-8 copy use, kms:Decrypt too). Only
   * through S3 in this region and for this bucket (the encryption context of a Bucket Key is the bucket's ARN;
   * of an object without one, the object's). Additive to the bucket grants of lib/rowfleet-function.ts bindBucket
   * and lib/workers.ts: those say which keys, this says the key of the encryption.
   */
  grantDataKey(grantee: iam.IGrantable, use: DataKeyUse): void {
    if (!this.dataKey) return;
    const actions = [
      ...(use.read || use.write ? ['kms:Decrypt'] : []),
      ...(use.write ? ['kms:GenerateDataKey'] : []),
    ];
    if (actions.length === 0) return;
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DataKey',
        actions,
        resources: [this.dataKey.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` },
          StringLike: {
            'kms:EncryptionContext:aws:s3:arn': [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
          },
        },
      }),
    );
  }
}
