import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECSClient } from '@aws-sdk/client-ecs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { recording } from './aws-calls.ts';

/**
 * AWS clients, created once per process and configured only by the standard environment
 * (region, credentials, AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>). Library code takes a client
 * as an option and falls back to these.
 */
let s3: S3Client | undefined;
let sqs: SQSClient | undefined;
let ddb: DynamoDBDocumentClient | undefined;
let ecs: ECSClient | undefined;
let ses: SESv2Client | undefined;

/** A custom S3 endpoint (an emulator or LocalStack) serves buckets by path, not by host name. */
function customS3Endpoint(): boolean {
  return Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
}

export function s3Client(): S3Client {
  return (s3 ??= recording(
    new S3Client({
      forcePathStyle: customS3Endpoint(),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    's3',
  ));
}

export function sqsClient(): SQSClient {
  // Queue URLs are used as given (an emulator's URL host may not resolve); the endpoint comes from config.
  return (sqs ??= recording(new SQSClient({ useQueueUrlAsEndpoint: false }), 'sqs'));
}

export function dynamoClient(): DynamoDBDocumentClient {
  // The document client shares the middleware stack of the client it wraps.
  return (ddb ??= DynamoDBDocumentClient.from(recording(new DynamoDBClient({}), 'dynamodb'), {
    marshallOptions: { removeUndefinedValues: true },
  }));
}

/**
 * ECS: RunTask is rate-limited per account and Region, so the client retries throttling itself, adaptively
 * (client-side rate limiting and jittered backoff), up to 6 attempts. RunTask carries a clientToken, so these
 * retries cannot start tasks twice (aws/ecs-launcher.ts).
 */
export const ECS_MAX_ATTEMPTS = 6;

export function ecsClient(): ECSClient {
  return (ecs ??= recording(new ECSClient({ maxAttempts: ECS_MAX_ATTEMPTS, retryMode: 'adaptive' }), 'ecs'));
}

/**
 * SES v2 (AWS_ENDPOINT_URL_SESV2 locally). One attempt per call: SES has no idempotency token, so a retry after
 * an unclear failure could send a mail twice; core/usage/ses-sender.ts retries only what SES refused (throttling).
 */
export function sesClient(): SESv2Client {
  return (ses ??= recording(new SESv2Client({ maxAttempts: 1 }), 'sesv2'));
}

let sns: SNSClient | undefined;

export function snsClient(): SNSClient {
  return (sns ??= recording(new SNSClient({}), 'sns'));
}

/**
 * Forgets the clients made so far: the next call of each function above makes a new one from the environment as
 * it is then. For a local command that attaches again to a restarted runtime (local/attach.ts), whose emulators
 * listen on new ports.
 */
export function resetClients(): void {
  s3 = sqs = ddb = ecs = ses = sns = undefined;
}
