import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { resourceNames } from '../config/names.ts';
import { acknowledge, acknowledgeFindings } from './nag.ts';

export interface RowfleetApiProps {
  readonly stage: string;
  /** POST /jobs, POST /uploads */
  readonly upload: lambda.IFunction;
  /** GET /jobs, GET /jobs/{token}, GET /health */
  readonly status: lambda.IFunction;
  /** REQUEST authorizer on the Authorization header; puts the caller's site into the request context. */
  readonly authorizer: lambda.IFunction;
  readonly rateLimit: number;
  readonly burstLimit: number;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
}

/**
 * Bodies API Gateway hands to the upload function base64-encoded and unchanged (CSV bytes in any encoding,
 * CP932 included). JSON stays text so that POST /uploads can be validated against its model.
 */
export const BINARY_MEDIA_TYPES = [
  'text/csv',
  'application/octet-stream',
  'application/vnd.ms-excel',
] as const;

/**
 * One JSON error shape for API Gateway's own answers, as the handlers use ({ error: { code, message } }).
 * `message` is a JSON string literal or $context.error.messageString (already quoted); validation details
 * go to the access log (validationError).
 */
const errorBody = (code: string, message: string) =>
  `{"error":{"code":"${code}","message":${message}},"requestId":"$context.requestId"}`;

/**
 * The REST API (v1): Lambda proxy integrations, a Lambda REQUEST authorizer on every route but /health,
 * request validation, stage throttling, JSON access logs naming the caller's site.
 */
export class RowfleetApi extends Construct {
  readonly api: apigw.RestApi;
  readonly accessLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RowfleetApiProps) {
    super(scope, id);
    const names = resourceNames(props.stage);

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      logGroupName: names.logGroup('api-access'),
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });

    this.api = new apigw.RestApi(this, 'Api', {
      restApiName: names.api,
      description: `Rowfleet ${props.stage}: CSV jobs`,
      endpointTypes: [apigw.EndpointType.REGIONAL],
      binaryMediaTypes: [...BINARY_MEDIA_TYPES],
      // The account-level role API Gateway needs to write logs; retained, because other stages share it.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stage,
        throttlingRateLimit: props.rateLimit,
        throttlingBurstLimit: props.burstLimit,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: false,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            method: '$context.httpMethod',
            resource: '$context.resourcePath',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            site: '$context.authorizer.site',
            authorizerError: '$context.authorizer.error',
            error: '$context.error.message',
            validationError: '$context.error.validationErrorString',
          }),
        ),
      },
    });

    const authorizer = new apigw.RequestAuthorizer(this, 'Authorizer', {
      authorizerName: `rowfleet-${props.stage}-tokens`,
      handler: props.authorizer,
      identitySources: [apigw.IdentitySource.header('Authorization')],
      resultsCacheTtl: Duration.minutes(5),
    });
    const validator = new apigw.RequestValidator(this, 'Validator', {
      restApi: this.api,
      requestValidatorName: 'params-and-body',
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    const uploadsModel = this.api.addModel('UploadsRequest', {
      contentType: 'application/json',
      modelName: 'UploadsRequest',
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        type: apigw.JsonSchemaType.OBJECT,
        additionalProperties: false,
        properties: {
          fileName: { type: apigw.JsonSchemaType.STRING, minLength: 1, maxLength: 255 },
          processor: { type: apigw.JsonSchemaType.STRING, pattern: '^[a-z0-9-]{1,32}$' },
          workers: { type: apigw.JsonSchemaType.INTEGER, minimum: 1, maximum: 100 },
        },
      },
    });

    const upload = new apigw.LambdaIntegration(props.upload, { allowTestInvoke: false });
    const status = new apigw.LambdaIntegration(props.status, { allowTestInvoke: false });
    const authorized: apigw.MethodOptions = {
      authorizer,
      authorizationType: apigw.AuthorizationType.CUSTOM,
      requestValidator: validator,
    };
    // The Authorization header is the authorizer's identity source: a request without it is refused with 401.
    const jobQuery = {
      'method.request.querystring.fileName': false,
      'method.request.querystring.processor': false,
      'method.request.querystring.workers': false,
    };

    const jobs = this.api.root.addResource('jobs');
    jobs.addMethod('POST', upload, { ...authorized, requestParameters: jobQuery });
    jobs.addMethod('GET', status, authorized);
    jobs.addResource('{token}').addMethod('GET', status, {
      ...authorized,
      requestParameters: { 'method.request.path.token': true },
    });
    this.api.root.addResource('uploads').addMethod('POST', upload, {
      ...authorized,
      requestParameters: jobQuery,
      requestModels: { 'application/json': uploadsModel },
    });
    const health = this.api.root.addResource('health').addMethod('GET', status, {
      authorizationType: apigw.AuthorizationType.NONE,
    });

    this.api.addGatewayResponse('Unauthorized', {
      type: apigw.ResponseType.UNAUTHORIZED,
      templates: {
        'application/json': errorBody('UNAUTHENTICATED', '"A bearer token bound to a site is required."'),
      },
    });
    this.api.addGatewayResponse('AccessDenied', {
      type: apigw.ResponseType.ACCESS_DENIED,
      templates: { 'application/json': errorBody('FORBIDDEN', '$context.error.messageString') },
    });
    this.api.addGatewayResponse('BadRequestBody', {
      type: apigw.ResponseType.BAD_REQUEST_BODY,
      templates: { 'application/json': errorBody('INVALID_REQUEST', '$context.error.messageString') },
    });
    this.api.addGatewayResponse('BadRequestParameters', {
      type: apigw.ResponseType.BAD_REQUEST_PARAMETERS,
      templates: { 'application/json': errorBody('INVALID_REQUEST', '$context.error.messageString') },
    });
    this.api.addGatewayResponse('Throttled', {
      type: apigw.ResponseType.THROTTLED,
      templates: { 'application/json': errorBody('THROTTLED', '"Too many requests; retry later."') },
    });

    acknowledge(
      this.api,
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'No WAF web ACL yet: every job route needs a site-bound bearer token, the stage is throttled and bodies are validated; add WAFv2 when the API is exposed beyond known sites (about 6 USD/month per ACL).',
      },
      {
        id: 'AwsSolutions-COG4',
        reason:
          'Callers are machines of a site, authenticated by a Lambda REQUEST authorizer against hashed site-bound API tokens in DynamoDB, not Cognito users.',
      },
    );
    acknowledgeFindings(this.api, {
      rule: 'AwsSolutions-IAM4',
      match: /^Policy::arn:.*:iam::aws:policy\/service-role\/AmazonAPIGatewayPushToCloudWatchLogs$/,
      reason:
        'AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy of the account-level role API Gateway uses to write access and execution logs.',
    });
    acknowledge(health, {
      id: 'AwsSolutions-APIG4',
      reason:
        'GET /health is the unauthenticated liveness probe: it returns only {status, stage} and reads no tenant data.',
    });
  }

  get url(): string {
    return this.api.url;
  }
}
