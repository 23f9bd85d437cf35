import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../aws/clients.ts';
import { allowedFrom, isTerminal, type JobState, type RowCounts } from './states.ts';

export interface JobError {
  readonly code: string;
  readonly message: string;
  readonly line?: number;
}

/** The job record, one DynamoDB item in the site's partition. */
export interface Job {
  readonly site: string;
  readonly token: string;
  readonly state: JobState;
  readonly processor: string;
  readonly fileName?: string;
  readonly sourceKey: string;
  readonly sourceBytes?: number;
  readonly encoding?: string;
  readonly header?: string[];
  /** Field delimiter detected on the header (',' or TAB). */
  readonly delimiter?: string;
  /** The job's own queue; its URL is looked up by name (it depends on the endpoint). */
  readonly queueName?: string;
  /** How the file arrived: in the request (split inline) or by a presigned POST (split on the S3 event). */
  readonly upload: 'direct' | 'presigned';
  readonly workers?: number;
  /** Numbered records, rejected ones included; known once the split is done. */
  readonly totalRecords?: number;
  readonly rejected?: number;
  /** Chunks on the queue; known once the split is done. */
  readonly totalChunks?: number;
  readonly chunksDone: number;
  /** Chunks counted as given up (poison): their part is stored under the give-up key. */
  readonly gaveUpChunks?: Set<number>;
  readonly succeeded: number;
  readonly failed: number;
  readonly error?: JobError;
  readonly resultKey?: string;
  readonly resultBytes?: number;
  readonly receivedAt: string;
  readonly splitStartedAt?: string;
  readonly runningAt?: string;
  readonly splitDoneAt?: string;
  readonly finalizingAt?: string;
  readonly finishedAt?: string;
  /** Epoch seconds after which DynamoDB's TTL removes the record (set when the job ends). */
  readonly expiresAt?: number;
  /** The site's office the job was run for (usage figures are kept per office); the API always sets it. */
  readonly office?: string;
  /** Options for the row processor (e.g. simulated delay), passed to the workers. */
  readonly options?: Record<string, string>;
  /** The job whose failed records this job re-runs (`rowfleet retry`). */
  readonly retryOf?: string;
}

/** Partition key: the site. A caller of one site can only ever address its own partition. */
const pk = (site: string) => `SITE#${site}`;
const sk = (token: string) => `JOB#${token}`;
/** Chunk numbers are kept in sets of this many, so no single update returns a large set. */
const CHUNK_SET_SIZE = 1000;
/** The sparse index of jobs in flight: only RUNNING and FINALIZING jobs carry its key attribute. */
export const ACTIVE_INDEX = 'active';
const ACTIVE = 'Y';

function isConditionFailure(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err as { name?: string }).name === 'ConditionalCheckFailedException'
  );
}

/** When a finished job's record may go: its results expire from S3 after the same number of days. */
export function expiresAt(retentionDays: number, now = Date.now()): number {
  return Math.floor(now / 1000) + retentionDays * 86_400;
}

export function jobCounts(job: Job): RowCounts {
  const rejected = job.rejected ?? 0;
  return {
    total: job.totalRecords ?? job.succeeded + job.failed + rejected,
    succeeded: job.succeeded,
    failed: job.failed,
    rejected,
  };
}

export interface ChunkCountResult {
  /** False when this chunk was already counted (a duplicate delivery). */
  readonly counted: boolean;
  /** True for exactly one caller: the one whose write completed the job's last chunk. */
  readonly complete: boolean;
}

/** Job state in DynamoDB: conditional state changes, exactly-once chunk counting. */
export class JobStore {
  constructor(
    private readonly table: string,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
  ) {}

  async create(job: Omit<Job, 'chunksDone' | 'succeeded' | 'failed' | 'state'>): Promise<Job> {
    const item: Job = { ...job, state: 'RECEIVED', chunksDone: 0, succeeded: 0, failed: 0 };
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: pk(job.site), sk: sk(job.token), ...item },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return item;
  }

  async get(site: string, token: string, consistent = true): Promise<Job | undefined> {
    const r = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: pk(site), sk: sk(token) },
        ConsistentRead: consistent,
      }),
    );
    return r.Item ? toJob(r.Item) : undefined;
  }

  /** The site's jobs, newest first. */
  async list(site: string, limit = 50): Promise<Job[]> {
    const jobs = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
      ExpressionAttributeValues: { ':pk': pk(site), ':job': 'JOB#' },
    });
    return jobs.sort((a, b) => b.receivedAt.localeCompare(a.receivedAt)).slice(0, limit);
  }

  /** Jobs in flight (RUNNING or FINALIZING) of every site, through the sparse `active` index. */
  listActive(): Promise<Job[]> {
    return this.queryAll({
      IndexName: ACTIVE_INDEX,
      KeyConditionExpression: 'active = :a',
      ExpressionAttributeValues: { ':a': ACTIVE },
    });
  }

  private async queryAll(q: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Job[]> {
    const jobs: Job[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.ddb.send(
        new QueryCommand({ ...q, TableName: this.table, ExclusiveStartKey: start }),
      );
      for (const i of r.Items ?? []) jobs.push(toJob(i));
      start = r.LastEvaluatedKey;
    } while (start);
    return jobs;
  }

  /**
   * Moves the job to `to` if it is in a state that allows it; sets `fields` in the same write.
   * Returns the new job, or undefined when another caller moved it first.
   */
  async transition(
    site: string,
    token: string,
    to: JobState,
    fields: Partial<Job> = {},
  ): Promise<Job | undefined> {
    const from = allowedFrom(to);
    const names: Record<string, string> = { '#state': 'state' };
    const values: Record<string, unknown> = { ':to': to };
    const sets = ['#state = :to'];
    Object.entries(fields).forEach(([k, v], i) => {
      if (v === undefined) return;
      names[`#f${i}`] = k;
      values[`:f${i}`] = v;
      sets.push(`#f${i} = :f${i}`);
    });
    from.forEach((s, i) => (values[`:from${i}`] = s));
    // Jobs in flight carry the `active` attribute, so the reaper finds them through a small sparse index.
    if (to === 'RUNNING') {
      values[':active'] = ACTIVE;
      sets.push('active = :active');
    }
    const remove = isTerminal(to) ? ' REMOVE active' : '';
    try {
      const r = await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(site), sk: sk(token) },
          UpdateExpression: `SET ${sets.join(', ')}${remove}`,
          ConditionExpression: `attribute_exists(pk) AND #state IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toJob(r.Attributes!);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /**
   * Starts the finalize: RUNNING→FINALIZING, or takes over a FINALIZING job whose finalize started more
   * than `leaseSeconds` ago and never finished (its Lambda died). Exactly one caller wins at a time.
   */
  async beginFinalize(
    site: string,
    token: string,
    now: Date,
    leaseSeconds: number,
  ): Promise<Job | undefined> {
    try {
      const r = await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(site), sk: sk(token) },
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
      );
      return toJob(r.Attributes!);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /**
   * Records the split's totals. Returns true when every chunk was already counted by then, i.e. the split
   * itself must ask for the finalize (the workers were faster).
   */
  async completeSplit(
    site: string,
    token: string,
    totals: { totalChunks: number; totalRecords: number; rejected: number; splitDoneAt: string },
  ): Promise<boolean> {
    const r = await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: pk(site), sk: sk(token) },
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

  /**
   * Counts a chunk exactly once: the chunk number joins a set in the same conditional write that adds its
   * counts, so a redelivered chunk changes nothing. The write also reads the split's total atomically,
   * so exactly one caller (a worker or the split) sees the job complete.
   */
  /** Gives up a finalize's lease (it failed): the next finalize request may start at once. */
  async releaseFinalize(site: string, token: string, since: Date): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(site), sk: sk(token) },
          UpdateExpression: 'SET finalizingAt = :released',
          ConditionExpression: '#state = :finalizing AND finalizingAt = :mine',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':finalizing': 'FINALIZING',
            ':mine': since.toISOString(),
            ':released': new Date(0).toISOString(),
          },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** Whether a chunk was counted already (its number is in the job's chunk sets). */
  async isChunkCounted(site: string, token: string, chunk: number): Promise<boolean> {
    const set = `chunks${Math.floor(chunk / CHUNK_SET_SIZE)}`;
    const r = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: pk(site), sk: sk(token) },
        ProjectionExpression: '#set',
        ExpressionAttributeNames: { '#set': set },
        ConsistentRead: true,
      }),
    );
    const counted = r.Item?.[set] as Set<number> | undefined;
    return counted?.has(chunk) ?? false;
  }

  async countChunk(
    site: string,
    token: string,
    chunk: number,
    counts: { succeeded: number; failed: number },
    /** The chunk was given up on: its part is the give-up variant (finalize reads the counted one). */
    gaveUp = false,
  ): Promise<ChunkCountResult> {
    try {
      const r = await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(site), sk: sk(token) },
          UpdateExpression:
            `ADD #set :k, chunksDone :one, succeeded :s, failed :f${gaveUp ? ', gaveUpChunks :k' : ''} ` +
            'SET totalSeen = if_not_exists(totalChunks, :none)',
          ConditionExpression: 'attribute_exists(pk) AND #state = :running AND NOT contains(#set, :chunk)',
          ExpressionAttributeNames: {
            '#set': `chunks${Math.floor(chunk / CHUNK_SET_SIZE)}`,
            '#state': 'state',
          },
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
      );
      const done = Number(r.Attributes?.chunksDone);
      const total = Number(r.Attributes?.totalSeen);
      return { counted: true, complete: total >= 0 && done === total };
    } catch (err) {
      if (isConditionFailure(err)) return { counted: false, complete: false };
      throw err;
    }
  }
}

function toJob(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, ...rest } = item;
  for (const k of Object.keys(rest))
    if (/^chunks\d+$/.test(k) || k === 'totalSeen' || k === 'doneAtSplit' || k === 'active') delete rest[k];
  return rest as unknown as Job;
}
