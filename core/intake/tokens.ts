import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../aws/clients.ts';
import { TABLE_PARTITIONS } from '../../config/names.ts';

/**
 * API tokens: each is bound to exactly one site. Only the SHA-256 of a token is stored; the token itself
 * is shown once, when it is issued.
 */
// Stryker disable next-line StringLiteral: update(token, '') reads a string as UTF-8 too
const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const key = (hash: string) => ({ pk: `${TABLE_PARTITIONS.apiToken}${hash}`, sk: 'APITOKEN' });

export class ApiTokens {
  constructor(
    private readonly table: string,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
  ) {}

  async issue(site: string, label = ''): Promise<string> {
    const token = `rf_${site}_${randomBytes(24).toString('base64url')}`;
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...key(hashToken(token)), site, label, createdAt: new Date().toISOString() },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return token;
  }

  /** The site a bearer token is bound to, or undefined for an unknown token. */
  async authenticate(authorization: string | undefined): Promise<string | undefined> {
    // Stryker disable next-line StringLiteral: no fallback text matches "Bearer <token>"
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) return undefined;
    const r = await this.ddb.send(new GetCommand({ TableName: this.table, Key: key(hashToken(m[1]!)) }));
    const site = r.Item?.site;
    // Stryker disable next-line ConditionalExpression: token items are written by issue() only, whose site is a string
    return typeof site === 'string' ? site : undefined;
  }
}
