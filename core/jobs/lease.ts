import { type TableRef, updateIf } from '../shared/dynamo.ts';
import { attemptCondition } from './attempts.ts';

type Key = Record<string, string>;

/**
 * The finalize lease. Starts the finalize: RUNNING→FINALIZING (or QUEUED→FINALIZING for a job stopped while it
 * waited for workers: cancelled, nothing processed), or takes over a FINALIZING job whose finalize
 * started more than `leaseSeconds` ago and never finished (it died). Exactly one caller wins at a time; the
 * job item as it is now, or undefined for every other caller. The lease names its `holder`, so a holder known
 * to be dead (a local runtime that was killed) can have its lease released at once instead of waited out.
 */
export async function beginFinalize(
  ref: TableRef,
  key: Key,
  now: Date,
  leaseSeconds: number,
  holder: string,
  /** The attempt the finalize is asked for (a late request of an attempt before finalizes nothing); any when absent. */
  attempt?: number,
): Promise<Record<string, unknown> | undefined> {
  const own = attempt === undefined ? undefined : attemptCondition(attempt);
  const r = await updateIf(ref, key, {
    UpdateExpression: 'SET #state = :finalizing, finalizingAt = :now, finalizeHolder = :holder',
    ConditionExpression:
      'attribute_exists(pk) AND (#state = :running OR (#state = :queued AND attribute_exists(#stop)) OR ' +
      '(#state = :finalizing AND finalizingAt < :stale))' +
      (own ? ` AND ${own.expression}` : ''),
    ExpressionAttributeNames: { '#state': 'state', '#stop': 'stop' },
    ExpressionAttributeValues: {
      ':finalizing': 'FINALIZING',
      ':running': 'RUNNING',
      ':queued': 'QUEUED',
      ':now': now.toISOString(),
      ':holder': holder,
      ':stale': new Date(now.getTime() - leaseSeconds * 1000).toISOString(),
      ...own?.values,
    },
    ReturnValues: 'ALL_NEW',
  });
  return r?.Attributes;
}

/**
 * Gives up a finalize's lease (it failed, or its holder is known dead), if it is still the one that started at
 * `since`: the next request may start at once. True when it was released.
 */
export async function releaseFinalize(ref: TableRef, key: Key, since: Date | string): Promise<boolean> {
  const r = await updateIf(ref, key, {
    UpdateExpression: 'SET finalizingAt = :released',
    ConditionExpression: '#state = :finalizing AND finalizingAt = :mine',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: {
      ':finalizing': 'FINALIZING',
      ':mine': typeof since === 'string' ? since : since.toISOString(),
      ':released': new Date(0).toISOString(),
    },
  });
  return r !== undefined;
}
