import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { ApiTokens } from '../../core/intake/tokens.ts';
import { requireEnv } from '../../core/shared/env.ts';
import { lambda } from '../shared/middleware.ts';
import { ENV } from '../../config/env.ts';

/** Lambda REQUEST authorizer: the bearer token decides the site; the site goes into the request context. */
export function createAuthorizer(tokens: ApiTokens) {
  return lambda(async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const header = event.headers?.Authorization ?? event.headers?.authorization;
    const site = await tokens.authenticate(header);
    if (!site) throw new Error('Unauthorized'); // API Gateway answers 401
    return {
      principalId: `site:${site}`,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: 'execute-api:Invoke',
            Effect: 'Allow',
            // Stryker disable next-line Regex: `.*` runs to the end of the ARN with or without the `$`
            Resource: event.methodArn.replace(/\/[^/]+\/[^/]+\/.*$/, '/*/*'),
          },
        ],
      },
      context: { site },
    };
  });
}

let cached: ReturnType<typeof createAuthorizer> | undefined;
export const handler = (event: APIGatewayRequestAuthorizerEvent, context: Context) =>
  (cached ??= createAuthorizer(new ApiTokens(requireEnv(ENV.table))))(event, context);
