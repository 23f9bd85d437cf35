import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { type TableRef, updateIf } from '../shared/dynamo.ts';
import { attemptCondition } from './attempts.ts';

/** Chunk numbers are kept in sets of this many, so no single update returns a large set. */
const CHUNK_SET_SIZE = 1000;
// Stryker disable next-line ArithmeticOperator: `chunk * 1000` still gives each chunk exactly one set; only the item size differs (one attribute per chunk), which no test of a few chunks can see
const chunkSet = (chunk: number) => `chunks${Math.floor(chunk / CHUNK_SET_SIZE)}`;

/** The names of the chunk sets of a job (or attempt) of `totalChunks` chunks. */
export function chunkSetNames(totalChunks: number): string[] {
  return Array.from({ length: Math.ceil(totalChunks / CHUNK_SET_SIZE) }, (_, i) => `chunks${i}`);
}

/** Attributes of the job item that only the counting uses (never part of the Job a caller sees). */
export function isCountingAttribute(name: string): boolean {
  return /^chunks\d+$/.test(name) || name === 'totalSeen';
}

export interface ChunkCountResult {
  /** False when this chunk was already counted (a duplicate delivery). */
  readonly counted: boolean;
  /** True for exactly one caller: the one whose write completed the job's last chunk. */
  readonly complete: boolean;
  /** The job's records succeeded and failed so far, this chunk's included (when it was counted). */
  readonly totals?: { readonly succeeded: number; readonly failed: number };
}

type Key = Record<string, string>;

/** Whether a chunk was counted already (its number is in the job's chunk sets). */
export async function isChunkCounted(ref: TableRef, key: Key, chunk: number): Promise<boolean> {
  const set = chunkSet(chunk);
  const r = await ref.ddb.send(
    new GetCommand({
      TableName: ref.table,
      Key: key,
      ProjectionExpression: '#set',
      ExpressionAttributeNames: { '#set': set },
      // Stryker disable next-line BooleanLiteral: dynalite (the emulator) always reads consistently; only AWS can tell a consistent read from an eventual one
      ConsistentRead: true,
    }),
  );
  const counted = r.Item?.[set] as Set<number> | undefined;
  return counted?.has(chunk) ?? false;
}

/**
 * Counts a chunk exactly once: the chunk number joins a set in the same conditional write that adds its
 * counts, so a redelivered chunk changes nothing. The split records its totals before the job is RUNNING (and
 * only RUNNING jobs count), so the write that counts the last chunk is the one that sees the job complete.
 */
export async function countChunk(
  ref: TableRef,
  key: Key,
  chunk: number,
  counts: { succeeded: number; failed: number },
  gaveUp: boolean,
  /** The attempt the chunk belongs to: a chunk of another attempt is never counted (core/jobs/attempts.ts). */
  attempt = 1,
): Promise<ChunkCountResult> {
  const own = attemptCondition(attempt);
  const r = await updateIf(ref, key, {
    UpdateExpression:
      `ADD #set :k, chunksDone :one, succeeded :s, failed :f${gaveUp ? ', gaveUpChunks :k' : ''} ` +
      'SET totalSeen = if_not_exists(totalChunks, :none)',
    ConditionExpression: `attribute_exists(pk) AND #state = :running AND NOT contains(#set, :chunk) AND ${own.expression}`,
    ExpressionAttributeNames: { '#set': chunkSet(chunk), '#state': 'state' },
    ExpressionAttributeValues: {
      ':k': new Set([chunk]),
      ':chunk': chunk,
      ':one': 1,
      ':s': counts.succeeded,
      ':f': counts.failed,
      // Stryker disable next-line UnaryOperator: only RUNNING jobs count and the split records totalChunks before RUNNING, so totalSeen is never :none
      ':none': -1,
      ':running': 'RUNNING',
      ...own.values,
    },
    ReturnValues: 'UPDATED_NEW',
  });
  if (!r) return { counted: false, complete: false };
  // Stryker disable next-line OptionalChaining: a counted update (ReturnValues UPDATED_NEW) always returns Attributes
  const done = Number(r.Attributes?.chunksDone);
  // Stryker disable next-line OptionalChaining: a counted update (ReturnValues UPDATED_NEW) always returns Attributes
  const total = Number(r.Attributes?.totalSeen);
  const totals = { succeeded: Number(r.Attributes?.succeeded), failed: Number(r.Attributes?.failed) };
  // Stryker disable next-line ConditionalExpression,EqualityOperator: chunksDone is at least 1 after a count and totalSeen is never -1 for a RUNNING job (see :none), so `total >= 0` cannot decide
  return { counted: true, complete: total >= 0 && done === total, totals };
}

/**
 * The numbers of the chunks counted so far, ascending: every chunk set of the job item, in one strongly
 * consistent read. Once the job left RUNNING nothing more is counted, so this is final (a stopped job's finalize
 * zips exactly these).
 */
export async function countedChunks(ref: TableRef, key: Key, totalChunks: number): Promise<number[]> {
  const sets = chunkSetNames(totalChunks);
  if (sets.length === 0) return [];
  const r = await ref.ddb.send(
    new GetCommand({
      TableName: ref.table,
      Key: key,
      ProjectionExpression: sets.map((_, i) => `#s${i}`).join(', '),
      ExpressionAttributeNames: Object.fromEntries(sets.map((name, i) => [`#s${i}`, name])),
      ConsistentRead: true,
    }),
  );
  const out: number[] = [];
  for (const name of sets) for (const c of (r.Item?.[name] as Set<number> | undefined) ?? []) out.push(c);
  return out.sort((a, b) => a - b);
}
