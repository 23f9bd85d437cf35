import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { dynamoClient } from '../../../../core/aws/clients.ts';
import { queryItems } from '../../../../core/shared/dynamo.ts';
import { useTestAws } from '../../../helpers/aws.ts';

const aws = useTestAws();

describe('queryItems', () => {
  it('reads every page of a query, not only the first', async () => {
    // Prepare: five items in a partition of their own, read two to a page (DynamoDB's 1 MB page, made small)
    const ref = { table: aws.table, ddb: dynamoClient() };
    const pk = 'TEST#pages';
    for (const n of [1, 2, 3, 4, 5])
      await ref.ddb.send(new PutCommand({ TableName: aws.table, Item: { pk, sk: `N#${n}`, n } }));

    // Act
    const read: unknown[] = [];
    for await (const item of queryItems(ref, {
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
      Limit: 2,
    }))
      read.push(item.n);

    // Assess
    expect(read).toEqual([1, 2, 3, 4, 5]);
  });
});
