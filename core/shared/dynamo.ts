import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
  type UpdateCommandInput,
  type UpdateCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { TABLE_PARTITIONS } from '../../config/names.ts';

/**
 * The table's partition of a site: every item that belongs to a site (jobs, chunk sets, usage counters, mail
 * markers, side-effect claims) lives under it, so a caller of one site can only ever address its own partition.
 */
export const sitePk = (site: string): string => `${TABLE_PARTITIONS.site}${site}`;

/** True for the error DynamoDB answers when a write's condition does not hold. */
export function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err as { name?: string }).name === 'ConditionalCheckFailedException'
  );
}

/**
 * `SET #f0 = :f0, …` for the fields given (undefined values left out), with its names and values; `prefix`
 * keeps the placeholders apart from the caller's own.
 */
export function setFields(
  fields: Record<string, unknown>,
  prefix = 'f',
): { sets: string[]; names: Record<string, string>; values: Record<string, unknown> } {
  const sets: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  Object.entries(fields).forEach(([k, v], i) => {
    if (v === undefined) return;
    names[`#${prefix}${i}`] = k;
    values[`:${prefix}${i}`] = v;
    sets.push(`#${prefix}${i} = :${prefix}${i}`);
  });
  return { sets, names, values };
}

/** Runs a conditional write; undefined when its condition did not hold (any other error is thrown). */
export async function unlessConditionFails<T>(write: () => Promise<T>): Promise<T | undefined> {
  try {
    return await write();
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

/** The table a store works on, with its client (injected in tests, one shared client otherwise). */
export interface TableRef {
  readonly table: string;
  readonly ddb: DynamoDBDocumentClient;
}

/**
 * One conditional UpdateItem of the item at `key` in `ref`'s table: its answer, or undefined when its condition
 * did not hold (any other error is thrown). Every conditional state change of the job record, its counting, its
 * lease, its stop and the effect claims goes through here.
 */
export function updateIf(
  ref: TableRef,
  key: Record<string, unknown>,
  input: Omit<UpdateCommandInput, 'TableName' | 'Key'>,
): Promise<UpdateCommandOutput | undefined> {
  return unlessConditionFails(() =>
    ref.ddb.send(new UpdateCommand({ ...input, TableName: ref.table, Key: key })),
  );
}

/**
 * Every item a Query of `ref`'s table answers, page after page (DynamoDB stops a page at 1 MB and names where the
 * next one starts). The job store's index reads, the usage counters and the budget partition all read this way.
 */
export async function* queryItems(
  ref: TableRef,
  input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
): AsyncGenerator<Record<string, unknown>> {
  let start: Record<string, unknown> | undefined;
  do {
    const r = await ref.ddb.send(
      new QueryCommand({ ...input, TableName: ref.table, ExclusiveStartKey: start }),
    );
    yield* r.Items ?? [];
    start = r.LastEvaluatedKey;
  } while (start);
}
