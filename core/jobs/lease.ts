import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unlessConditionFails, type TableRef } from '../shared/dynamo.ts';

type Key = Record<string, string>;

/**
 * The finalize lease. Starts the finalize: RUNNING→FINALIZING, or takes over a FINALIZING job whose finalize
 * started more than `leaseSeconds` ago and never finished (it died). Exactly one caller wins at a time; the
 * job item as it is now, or undefined for every other caller.
 */
export async function beginFinalize(
  ref: TableRef,
  key: Key,
  now: Date,
  leaseSeconds: number,
): Promise<Record<string, unknown> | undefined> {
  const r = await unlessConditionFails(() =>
    ref.ddb.send(
      new UpdateCommand({
        TableName: ref.table,
        Key: key,
        UpdateExpression: 'SET #state = :finalizing, finalizingAt = :now',
        ConditionExpression:
          'attribute_exists(pk) AND (#state = :running OR (#state = :finalizing AND finalizingAt < :stale))',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':finalizing': 'FINALIZING',
          ':running': 'RUNNING',
          ':now': now.toISOString(),
          ':stale': new Date(now.getTime() - leaseSeconds * 1000).toISOString(),
        },
        ReturnValues: 'ALL_NEW',
      }),
    ),
  );
  return r?.Attributes;
}

/** Gives up a finalize's lease (it failed), if it is still the holder's: the next request may start at once. */
export async function releaseFinalize(ref: TableRef, key: Key, since: Date): Promise<void> {
  await unlessConditionFails(() =>
    ref.ddb.send(
      new UpdateCommand({
        TableName: ref.table,
        Key: key,
        UpdateExpression: 'SET finalizingAt = :released',
        ConditionExpression: '#state = :finalizing AND finalizingAt = :mine',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':finalizing': 'FINALIZING',
          ':mine': since.toISOString(),
          ':released': new Date(0).toISOString(),
        },
      }),
    ),
  );
}
