import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unlessConditionFails, type TableRef } from '../shared/dynamo.ts';

/** Chunk numbers are kept in sets of this many, so no single update returns a large set. */
const CHUNK_SET_SIZE = 1000;
const chunkSet = (chunk: number) => `chunks${Math.floor(chunk / CHUNK_SET_SIZE)}`;

/** Attributes of the job item that only the counting uses (never part of the Job a caller sees). */
export function isCountingAttribute(name: string): boolean {
  return /^chunks\d+$/.test(name) || name === 'totalSeen' || name === 'doneAtSplit';
}

export interface ChunkCountResult {
  /** False when this chunk was already counted (a duplicate delivery). */
  readonly counted: boolean;
  /** True for exactly one caller: the one whose write completed the job's last chunk. */
  readonly complete: boolean;
}

export interface SplitTotals {
  readonly totalChunks: number;
  readonly totalRecords: number;
  readonly rejected: number;
  readonly splitDoneAt: string;
}

type Key = Record<string, string>;

/**
 * Records the split's totals, once. Returns true when every chunk was already counted by then, i.e. the split
 * itself must ask for the finalize (the workers were faster). Together with {@link countChunk} this makes
 * exactly one caller — a worker or the split — see the job complete.
 */
export async function completeSplit(ref: TableRef, key: Key, totals: SplitTotals): Promise<boolean> {
  const r = await ref.ddb.send(
    new UpdateCommand({
      TableName: ref.table,
      Key: key,
      UpdateExpression:
        'SET totalChunks = :tc, totalRecords = :tr, rejected = :rj, splitDoneAt = :at, doneAtSplit = if_not_exists(chunksDone, :zero)',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(totalChunks)',
      ExpressionAttributeValues: {
        ':tc': totals.totalChunks,
        ':tr': totals.totalRecords,
        ':rj': totals.rejected,
        ':at': totals.splitDoneAt,
        ':zero': 0,
      },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(r.Attributes?.doneAtSplit ?? -1) === totals.totalChunks;
}

/** Whether a chunk was counted already (its number is in the job's chunk sets). */
export async function isChunkCounted(ref: TableRef, key: Key, chunk: number): Promise<boolean> {
  const set = chunkSet(chunk);
  const r = await ref.ddb.send(
    new GetCommand({
      TableName: ref.table,
      Key: key,
      ProjectionExpression: '#set',
      ExpressionAttributeNames: { '#set': set },
      ConsistentRead: true,
    }),
  );
  const counted = r.Item?.[set] as Set<number> | undefined;
  return counted?.has(chunk) ?? false;
}

/**
 * Counts a chunk exactly once: the chunk number joins a set in the same conditional write that adds its
 * counts, so a redelivered chunk changes nothing. The write also reads the split's total atomically, so
 * exactly one caller (a worker or the split) sees the job complete.
 */
export async function countChunk(
  ref: TableRef,
  key: Key,
  chunk: number,
  counts: { succeeded: number; failed: number },
  gaveUp: boolean,
): Promise<ChunkCountResult> {
  const r = await unlessConditionFails(() =>
    ref.ddb.send(
      new UpdateCommand({
        TableName: ref.table,
        Key: key,
        UpdateExpression:
          `ADD #set :k, chunksDone :one, succeeded :s, failed :f${gaveUp ? ', gaveUpChunks :k' : ''} ` +
          'SET totalSeen = if_not_exists(totalChunks, :none)',
        ConditionExpression: 'attribute_exists(pk) AND #state = :running AND NOT contains(#set, :chunk)',
        ExpressionAttributeNames: { '#set': chunkSet(chunk), '#state': 'state' },
        ExpressionAttributeValues: {
          ':k': new Set([chunk]),
          ':chunk': chunk,
          ':one': 1,
          ':s': counts.succeeded,
          ':f': counts.failed,
          ':none': -1,
          ':running': 'RUNNING',
        },
        ReturnValues: 'UPDATED_NEW',
      }),
    ),
  );
  if (!r) return { counted: false, complete: false };
  const done = Number(r.Attributes?.chunksDone);
  const total = Number(r.Attributes?.totalSeen);
  return { counted: true, complete: total >= 0 && done === total };
}
