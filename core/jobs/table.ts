import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { JOBS_BY_TIME_INDEX } from '../../config/job-list.ts';
import { ACTIVE_INDEX } from './store.ts';

/**
 * The one DynamoDB table's key schema: `pk` (the site's partition, `SITE#<site>`, or `APITOKEN#<hash>`) and
 * `sk`; plus the sparse index of jobs in flight and the index of each site's jobs by time (GET /jobs). The local runtime and the tests create it from here;
 * lib/storage.ts declares the same keys for AWS.
 */
export const TABLE_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  activeIndex: ACTIVE_INDEX,
  activeKey: 'active',
} as const;

export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
      { AttributeName: TABLE_KEYS.sortKey, AttributeType: 'S' },
      { AttributeName: TABLE_KEYS.activeKey, AttributeType: 'S' },
      { AttributeName: JOBS_BY_TIME_INDEX.sortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: TABLE_KEYS.activeIndex,
        KeySchema: [
          { AttributeName: TABLE_KEYS.activeKey, KeyType: 'HASH' },
          { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: JOBS_BY_TIME_INDEX.name,
        KeySchema: [
          { AttributeName: JOBS_BY_TIME_INDEX.partitionKey, KeyType: 'HASH' },
          { AttributeName: JOBS_BY_TIME_INDEX.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...JOBS_BY_TIME_INDEX.projected] },
      },
    ],
  };
}
