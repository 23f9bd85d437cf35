import { readFileSync } from 'node:fs';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_ROUTES, BINARY_MEDIA_TYPES } from '../config/routes.ts';
import { resourceNames } from '../config/names.ts';
import { acknowledge, acknowledgeFindings } from './nag.ts';
import { projectPath } from './paths.ts';

/**
 * The request models generated from core/'s request schemas by `npm run gen:api-models` (lib may not import
 * core; test/infra/api-models.test.ts fails when this file is stale).
 */
export const API_MODELS = JSON.parse(readFileSync(projectPath('lib/api-models.json'), 'utf8')) as {
  readonly jobRequest: Record<string, unknown>;
  readonly jobRequestQuery: readonly string[];
  /** Query parameters of the GET routes by schema name, each with whether it is required. */
  readonly queries: Readonly<Record<string, Readonly<Record<string, boolean>>>>;
};

export interface RowfleetApiProps {
  readonly stage: string;
  /** The API's writes: POST /jobs, POST /uploads, DELETE /jobs/{token}, POST /jobs/{token}/retry */
  readonly upload: lambda.IFunction;
  /** The API's reads: GET /jobs, GET /jobs/{token}, GET /jobs/{token}/errors, GET /usage, GET /health */
  readonly status: lambda.IFunction;
  /** GET /console, GET /console/{proxy+}: the web console's files, with its security headers */
  readonly console: lambda.IFunction;
  /** REQUEST authorizer on the Authorization header; puts the caller's site into the request context. */
  readonly authorizer: lambda.IFunction;
  readonly rateLimit: number;
  readonly burstLimit: number;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
}

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
    // The model is generated from the job-request schema in core/ (lib/api-models.json): one description.
    const { $schema: _draft, ...jobRequest } = API_MODELS.jobRequest;
    const uploadsModel = this.api.addModel('UploadsRequest', {
      contentType: 'application/json',
      modelName: 'UploadsRequest',
      schema: { schema: apigw.JsonSchemaVersion.DRAFT4, ...(jobRequest as apigw.JsonSchema) },
    });

    const integrations = {
      upload: new apigw.LambdaIntegration(props.upload, { allowTestInvoke: false }),
      status: new apigw.LambdaIntegration(props.status, { allowTestInvoke: false }),
      console: new apigw.LambdaIntegration(props.console, { allowTestInvoke: false }),
    };
    // The Authorization header is the authorizer's identity source: a request without it is refused with 401.
    const authorized: apigw.MethodOptions = {
      authorizer,
      authorizationType: apigw.AuthorizationType.CUSTOM,
      requestValidator: validator,
    };
    const jobQuery = Object.fromEntries(
      API_MODELS.jobRequestQuery.map((name) => [`method.request.querystring.${name}`, false]),
    );
    // Every route of config/routes.ts, with its path parameters required and its job request's model.
    const methods = API_ROUTES.map((route) => {
      const resource = this.api.root.resourceForPath(route.path);
      const pathParams = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      const query = route.query ? API_MODELS.queries[route.query] : undefined;
      if (route.query && !query)
        throw new Error(`RowfleetApi: no query model "${route.query}" (npm run gen:api-models)`);
      const requestParameters = {
        ...Object.fromEntries(pathParams.map((p) => [`method.request.path.${p}`, true])),
        ...(route.jobRequest === 'query' ? jobQuery : {}),
        // Presence of the required ones is checked here; their values by the handler (core/intake/query.ts).
        ...Object.fromEntries(
          Object.entries(query ?? {}).map(([name, required]) => [
            `method.request.querystring.${name}`,
            required,
          ]),
        ),
      };
      const options: apigw.MethodOptions = {
        ...(route.auth ? authorized : { authorizationType: apigw.AuthorizationType.NONE }),
        ...(Object.keys(requestParameters).length > 0 ? { requestParameters } : {}),
        ...(route.jobRequest === 'body' ? { requestModels: { 'application/json': uploadsModel } } : {}),
      };
      return { route, method: resource.addMethod(route.method, integrations[route.function], options) };
    });

    // API Gateway's own refusals answer in the API's error shape: [id, type, code, message (a VTL expression)].
    const refusals: readonly [string, apigw.ResponseType, string, string][] = [
      [
        'Unauthorized',
        apigw.ResponseType.UNAUTHORIZED,
        'UNAUTHENTICATED',
        '"A bearer token bound to a site is required."',
      ],
      ['AccessDenied', apigw.ResponseType.ACCESS_DENIED, 'FORBIDDEN', '$context.error.messageString'],
      [
        'BadRequestBody',
        apigw.ResponseType.BAD_REQUEST_BODY,
        'INVALID_REQUEST',
        '$context.error.messageString',
      ],
      [
        'BadRequestParameters',
        apigw.ResponseType.BAD_REQUEST_PARAMETERS,
        'INVALID_REQUEST',
        '$context.error.messageString',
      ],
      ['Throttled', apigw.ResponseType.THROTTLED, 'THROTTLED', '"Too many requests; retry later."'],
    ];
    for (const [id, type, code, message] of refusals)
      this.api.addGatewayResponse(id, { type, templates: { 'application/json': errorBody(code, message) } });

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
    for (const { route, method } of methods.filter((m) => !m.route.auth)) {
      if (route.path === '/health') {
        acknowledge(method, {
          id: 'AwsSolutions-APIG4',
          reason:
            'GET /health is the unauthenticated liveness probe: it returns only {status, stage} and reads no tenant data.',
        });
      } else if (route.function === 'console' && route.method === 'GET') {
        acknowledge(method, {
          id: 'AwsSolutions-APIG4',
          reason:
            "The web console's static files (HTML, JavaScript, CSS, the same for every site) carry no tenant data; the sign-in page must load before a token is typed, and every API call the console makes carries the site's bearer token.",
        });
      } else throw new Error(`RowfleetApi: ${route.method} ${route.path} has no authorizer`);
    }
  }

  get url(): string {
    return this.api.url;
  }
}
