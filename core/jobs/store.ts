import {
  GetCommand,
  PutCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { JOBS_BY_TIME_INDEX } from '../../config/job-list.ts';
import { dynamoClient } from '../aws/clients.ts';
import { queryItems, setFields, sitePk, type TableRef, updateIf } from '../shared/dynamo.ts';
import { beginAttempt, markChunksSent, type AttemptStart, type AttemptSummary } from './attempts.ts';
import {
  chunkSetNames,
  countChunk,
  countedChunks,
  isChunkCounted,
  isCountingAttribute,
  type ChunkCountResult,
} from './chunk-count.ts';
import { beginFinalize, releaseFinalize } from './lease.ts';
import { allowedFrom, isTerminal, type JobState, type RowCounts } from './states.ts';
import { cancelUnplanned, recordStop, type JobStop } from '../stop/rules.ts';
import type { JobError } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { JobError };

/**
 * The hash of a job's zip entry names (Job.nameHash, fixed when the job is created, and PartMeta.nameHash;
 * computed in core/messages/part.ts): MurmurHash3 x86_128 of the name's UTF-16 code units (core/shared/murmur3.ts),
 * in JavaScript with no object per name. Absent: SHA-256, as jobs created before it have theirs, so every part of a
 * job is hashed alike whichever workers write them. At 1M records the one-shot SHA-256 took 0.65 s of a worker's
 * 11.6 s busy (its CPU profile). The names need no secrecy, only few collisions (96 bits), and a name is only
 * compared with the names of its own job.
 */
export const NAME_HASH = 'murmur3';
export type NameHashKind = typeof NAME_HASH;

/** The job record, one DynamoDB item in the site's partition. */
export interface Job {
  readonly site: string;
  readonly token: string;
  readonly state: JobState;
  readonly processor: string;
  readonly fileName?: string;
  /** The source the split validated and the workers read (a presigned upload is moved here, out of the form's reach). */
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
  /** The job's latest results.csv, its own object beside the zip (absent for jobs finalized before it was kept). */
  readonly resultsSheetKey?: string;
  readonly resultsSheetBytes?: number;
  readonly receivedAt: string;
  readonly splitStartedAt?: string;
  /** When its split put it in the queue for workers (QUEUED). */
  readonly queuedAt?: string;
  readonly runningAt?: string;
  readonly splitDoneAt?: string;
  readonly finalizingAt?: string;
  readonly finishedAt?: string;
  /** Epoch seconds after which DynamoDB's TTL removes the record (set when the job ends). */
  readonly expiresAt?: number;
  /** The site's office the job was run for (usage figures are kept per office); the API always sets it. */
  readonly office?: string;
  /**
   * How its workers hash its zip entry names for the finalize's check across chunks (core/messages/part.ts
   * NAME_HASH): set when the job is created, so every part of a job is hashed alike whichever workers write it.
   * Absent: SHA-256 (jobs created before it).
   */
  readonly nameHash?: NameHashKind;
  /** Options for the row processor (e.g. simulated delay), passed to the workers. */
  readonly options?: Record<string, string>;
  /** The job whose failed records this job re-runs (jobs of an older `rowfleet retry`, which made new jobs). */
  readonly retryOf?: string;
  /** The job's current attempt: absent for its first run, 2, 3, … for retries (core/jobs/attempts.ts). */
  readonly attempt?: number;
  /** The job's attempts, oldest first (kept once a retry started a second one). */
  readonly attempts?: readonly AttemptSummary[];
  /**
   * A retry's or a resubmission's attempt whose chunks are not all sent yet: when its write started it (attempts.ts
   * beginAttempt). Gone once they are ({@link chunksSentAt}); the reaper sends them again when it stays too long.
   */
  readonly chunksPendingSince?: string;
  /** When the current attempt's chunks were all sent (attempts 2, 3, …; the split's first attempt keeps none). */
  readonly chunksSentAt?: string;
  /** Records a retry may run now (known once an attempt is finalized; 0 while one runs). */
  readonly retryable?: number;
  /** Failed launches in a row (0 after one that started every task). */
  readonly launchFailures?: number;
  readonly lastLaunchAt?: string;
  /** The reaper's next launch attempt is not before this. */
  readonly nextLaunchAt?: string;
  readonly lastLaunchError?: string;
  /** Who holds the finalize lease: `local:<runtime instance>:<id>` or `lambda:<request id>` (lease.ts). */
  readonly finalizeHolder?: string;
  /** The job was stopped before its last record: cancelled, or over its failure rate (stop.ts). */
  readonly stop?: JobStop;
  /** Lines of the job's errors.csv (known once it is finalized; GET /jobs/{token}/errors pages through them). */
  readonly errorRows?: number;
  /**
   * The job's trace context (W3C traceparent): its trace id and the id of its job span, chosen when the job was
   * created; every span of the job hangs from it (core/shared/trace.ts). Absent on jobs older than tracing.
   */
  readonly trace?: string;
}

/** A job as a listing reads it (the jobs-by-time index): the fields config/job-list.ts projects, no heavier. */
export type ListedJob = Pick<Job, 'receivedAt' | (typeof JOBS_BY_TIME_INDEX.projected)[number]>;

/** A job's place in its site's jobs by time: where the next page of a listing starts (after it). */
export interface JobPosition {
  readonly receivedAt: string;
  readonly token: string;
}

/** One page of a site's jobs, newest first; `after` is set when older jobs follow. */
export interface JobPage {
  readonly jobs: ListedJob[];
  readonly after?: JobPosition;
  /** Read capacity units the page consumed (as DynamoDB reports them). */
  readonly readUnits: number;
}

/** What the split records on the job before any queue, message or worker exists for it. */
export interface SplitPlan {
  readonly header: string[];
  readonly delimiter: string;
  readonly encoding?: string;
  readonly queueName?: string;
  readonly workers: number;
  readonly totalChunks: number;
  /** Numbered records, rejected ones included. */
  readonly totalRecords: number;
  readonly rejected: number;
  readonly splitDoneAt: string;
}

/** The launch bookkeeping launchWorkers (core/budget/launch.ts) keeps on a running job. */
export interface LaunchRecord {
  readonly launchFailures: number;
  readonly lastLaunchAt: Date;
  readonly nextLaunchAt?: Date;
  readonly lastLaunchError?: string;
}

/** A job's item: in its site's partition (a caller of one site can only ever address its own partition). */
export const jobKey = (site: string, token: string) => ({ pk: sitePk(site), sk: `JOB#${token}` });
/** The sparse index of jobs in flight: only RUNNING and FINALIZING jobs carry its key attribute. */
export const ACTIVE_INDEX = 'active';
const ACTIVE = 'Y';

/** When a finished job's record may go: its results expire from S3 after the same number of days. */
export function expiresAt(retentionDays: number, now = Date.now()): number {
  return Math.floor(now / 1000) + retentionDays * 86_400;
}

export function jobCounts(job: Pick<Job, 'totalRecords' | 'succeeded' | 'failed' | 'rejected'>): RowCounts {
  const rejected = job.rejected ?? 0;
  return {
    total: job.totalRecords ?? job.succeeded + job.failed + rejected,
    succeeded: job.succeeded,
    failed: job.failed,
    rejected,
  };
}

/**
 * Job state in DynamoDB: the job record and its conditional state changes. Two rules with their own modules
 * are reached through it too: exactly-once chunk counting (chunk-count.ts) and the finalize lease (lease.ts).
 */
export class JobStore {
  private readonly ref: TableRef;

  constructor(table: string, ddb: DynamoDBDocumentClient = dynamoClient()) {
    this.ref = { table, ddb };
  }

  /**
   * A new RECEIVED job. It is in the index of jobs in flight from the start (the reaper expires a presigned job
   * whose file never comes, and re-drives a split that died), and carries a TTL from the start, so even a job
   * nothing ever touches again goes away.
   */
  async create(
    job: Omit<Job, 'chunksDone' | 'succeeded' | 'failed' | 'state'>,
    retentionDays = 14,
  ): Promise<Job> {
    const item: Job = {
      expiresAt: expiresAt(retentionDays, Date.parse(job.receivedAt)),
      nameHash: NAME_HASH,
      ...job,
      state: 'RECEIVED',
      chunksDone: 0,
      succeeded: 0,
      failed: 0,
    };
    await this.ref.ddb.send(
      new PutCommand({
        TableName: this.ref.table,
        Item: { ...jobKey(job.site, job.token), ...item, active: ACTIVE },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return item;
  }

  // Stryker disable next-line BooleanLiteral: dynalite (the emulator) always reads consistently; only AWS can tell a consistent read from an eventual one
  async get(site: string, token: string, consistent = true): Promise<Job | undefined> {
    const r = await this.ref.ddb.send(
      new GetCommand({ TableName: this.ref.table, Key: jobKey(site, token), ConsistentRead: consistent }),
    );
    return r.Item ? toJob(r.Item) : undefined;
  }

  /**
   * One page of the site's jobs, newest first, after `after` (a position an earlier page gave): one Query of the
   * jobs-by-time index in the site's partition, `limit` jobs (and one more, to know whether older ones follow)
   * of its projected fields. What it reads depends on `limit`, not on how many jobs the site has.
   */
  async page(site: string, limit: number, after?: JobPosition): Promise<JobPage> {
    const r = await this.ref.ddb.send(
      new QueryCommand({
        TableName: this.ref.table,
        IndexName: JOBS_BY_TIME_INDEX.name,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': sitePk(site) },
        ScanIndexForward: false,
        Limit: limit + 1,
        // The site of a position is always the caller's: a page never starts in another partition.
        ExclusiveStartKey: after
          ? { ...jobKey(site, after.token), [JOBS_BY_TIME_INDEX.sortKey]: after.receivedAt }
          : undefined,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    // Only job items carry `receivedAt` (config/job-list.ts); anything else in the partition is never listed.
    const items = (r.Items ?? [])
      .filter((i) => String(i.sk).startsWith('JOB#'))
      .map((i) => toJob(i) as ListedJob);
    const jobs = items.slice(0, limit);
    const last = jobs.at(-1);
    const more = items.length > limit || r.LastEvaluatedKey !== undefined;
    return {
      jobs,
      ...(more && last ? { after: { receivedAt: last.receivedAt, token: last.token } } : {}),
      readUnits: r.ConsumedCapacity?.CapacityUnits ?? 0,
    };
  }

  /** The site's newest `limit` jobs (one page), newest first. */
  async list(site: string, limit = 50): Promise<ListedJob[]> {
    return (await this.page(site, limit)).jobs;
  }

  /** Jobs not finished yet (RECEIVED, RUNNING or FINALIZING) of every site, through the sparse `active` index. */
  listActive(): Promise<Job[]> {
    return this.queryAll({
      IndexName: ACTIVE_INDEX,
      KeyConditionExpression: 'active = :a',
      ExpressionAttributeValues: { ':a': ACTIVE },
    });
  }

  private async queryAll(q: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Job[]> {
    const jobs: Job[] = [];
    for await (const i of queryItems(this.ref, q)) jobs.push(toJob(i));
    return jobs;
  }

  /**
   * Moves the job to `to` if it is in a state that allows it (states.ts); sets `fields` in the same write.
   * Returns the new job, or undefined when another caller moved it first.
   */
  async transition(
    site: string,
    token: string,
    to: JobState,
    fields: Partial<Job> = {},
  ): Promise<Job | undefined> {
    const from = allowedFrom(to);
    const { sets, names, values } = setFields(fields);
    sets.unshift('#state = :to');
    from.forEach((s, i) => (values[`:from${i}`] = s));
    // Jobs in flight carry the `active` attribute, so the reaper finds them through a small sparse index.
    // Stryker disable next-line ConditionalExpression,StringLiteral,BlockStatement: every job carries `active` from its creation and only a terminal state removes it, so setting it again on RUNNING cannot be seen
    if (to === 'RUNNING') {
      values[':active'] = ACTIVE;
      sets.push('active = :active');
    }
    const remove = isTerminal(to) ? ' REMOVE active' : '';
    const r = await updateIf(this.ref, jobKey(site, token), {
      UpdateExpression: `SET ${sets.join(', ')}${remove}`,
      ConditionExpression: `attribute_exists(pk) AND #state IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
      ExpressionAttributeNames: { ...names, '#state': 'state' },
      ExpressionAttributeValues: { ...values, ':to': to },
      ReturnValues: 'ALL_NEW',
    });
    return r ? toJob(r.Attributes!) : undefined;
  }

  /** Starts (or takes over) the job's finalize: lease.ts. */
  async beginFinalize(
    site: string,
    token: string,
    now: Date,
    leaseSeconds: number,
    holder = 'unknown',
    attempt?: number,
  ): Promise<Job | undefined> {
    const item = await beginFinalize(this.ref, jobKey(site, token), now, leaseSeconds, holder, attempt);
    return item ? toJob(item) : undefined;
  }

  /** Gives up a finalize's lease (it failed, or its holder is known dead), if it is still the one given: lease.ts. */
  releaseFinalize(site: string, token: string, since: Date | string): Promise<boolean> {
    return releaseFinalize(this.ref, jobKey(site, token), since);
  }

  /**
   * Claims a RECEIVED job's split: one split at a time (an S3 event delivered twice at once splits once). A split
   * that started more than `leaseSeconds` ago died (its function timed out): it is taken over. The claimed job,
   * or undefined.
   */
  async beginSplit(site: string, token: string, now: Date, leaseSeconds: number): Promise<Job | undefined> {
    const r = await updateIf(this.ref, jobKey(site, token), {
      UpdateExpression: 'SET splitStartedAt = :now',
      ConditionExpression:
        'attribute_exists(pk) AND #state = :received AND (attribute_not_exists(splitStartedAt) OR splitStartedAt < :stale)',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: {
        ':now': now.toISOString(),
        ':received': 'RECEIVED',
        ':stale': new Date(now.getTime() - leaseSeconds * 1000).toISOString(),
      },
      ReturnValues: 'ALL_NEW',
    });
    return r ? toJob(r.Attributes!) : undefined;
  }

  /** Gives up a split's claim (it failed): a redelivered event may split at once. */
  async releaseSplit(site: string, token: string, since: Date): Promise<void> {
    await updateIf(this.ref, jobKey(site, token), {
      UpdateExpression: 'REMOVE splitStartedAt',
      ConditionExpression: '#state = :received AND splitStartedAt = :mine',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':received': 'RECEIVED', ':mine': since.toISOString() },
    });
  }

  /**
   * Records the split's plan and totals on a RECEIVED job, before its queue, messages or workers exist: so the
   * item is known to hold them (a header too large for it was refused earlier), and the worker that counts the
   * last chunk always knows it is the last. A split run again (a redelivered event) writes the same values.
   * False when the job is no longer RECEIVED.
   */
  async recordSplit(site: string, token: string, plan: SplitPlan): Promise<boolean> {
    const { sets, names, values } = setFields({ ...plan });
    const r = await updateIf(this.ref, jobKey(site, token), {
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: 'attribute_exists(pk) AND #state = :received',
      ExpressionAttributeNames: { ...names, '#state': 'state' },
      ExpressionAttributeValues: { ...values, ':received': 'RECEIVED' },
    });
    return r !== undefined;
  }

  /** Points a RECEIVED job at the source the split moved out of the upload form's reach. */
  async moveSource(site: string, token: string, sourceKey: string): Promise<boolean> {
    const r = await updateIf(this.ref, jobKey(site, token), {
      UpdateExpression: 'SET sourceKey = :key',
      ConditionExpression: 'attribute_exists(pk) AND #state = :received',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':key': sourceKey, ':received': 'RECEIVED' },
    });
    return r !== undefined;
  }

  /** The launch bookkeeping of a running job (core/budget/launch.ts); nothing once the job left RUNNING. */
  async recordLaunch(site: string, token: string, l: LaunchRecord): Promise<void> {
    const { sets, names, values } = setFields({
      launchFailures: l.launchFailures,
      lastLaunchAt: l.lastLaunchAt.toISOString(),
      nextLaunchAt: l.nextLaunchAt?.toISOString(),
      lastLaunchError: l.lastLaunchError,
    });
    const remove = l.nextLaunchAt ? '' : ' REMOVE nextLaunchAt, lastLaunchError';
    await updateIf(this.ref, jobKey(site, token), {
      UpdateExpression: `SET ${sets.join(', ')}${remove}`,
      ConditionExpression: 'attribute_exists(pk) AND #state = :running',
      ExpressionAttributeNames: { ...names, '#state': 'state' },
      ExpressionAttributeValues: { ...values, ':running': 'RUNNING' },
    });
  }

  /** Records a stop on a job that is RECEIVED, QUEUED or RUNNING and not stopped yet (stop.ts); the job, or undefined. */
  async recordStop(site: string, token: string, stop: JobStop): Promise<Job | undefined> {
    const item = await recordStop(this.ref, jobKey(site, token), stop);
    return item ? toJob(item) : undefined;
  }

  /** Ends a RECEIVED job the split has not planned yet as CANCELLED (stop.ts); the job, or undefined. */
  async cancelUnplanned(
    site: string,
    token: string,
    fields: { stop: JobStop; finishedAt: string; expiresAt: number },
  ): Promise<Job | undefined> {
    const item = await cancelUnplanned(this.ref, jobKey(site, token), fields);
    return item ? toJob(item) : undefined;
  }

  /** Starts the next attempt of a finished job, one at a time (attempts.ts); the job, or undefined. */
  async beginAttempt(
    site: string,
    token: string,
    start: Omit<AttemptStart, 'fromChunkSets'> & { fromChunks: number },
  ): Promise<Job | undefined> {
    const { fromChunks, ...rest } = start;
    const item = await beginAttempt(this.ref, jobKey(site, token), {
      ...rest,
      fromChunkSets: chunkSetNames(fromChunks),
    });
    return item ? toJob(item) : undefined;
  }

  /** Attempt `attempt`'s chunks were all sent (attempts.ts); false when the job is at another attempt. */
  markChunksSent(site: string, token: string, attempt: number, at: string): Promise<boolean> {
    return markChunksSent(this.ref, jobKey(site, token), attempt, at);
  }

  /** The chunks counted so far, ascending (chunk-count.ts). */
  countedChunks(site: string, token: string, totalChunks: number): Promise<number[]> {
    return countedChunks(this.ref, jobKey(site, token), totalChunks);
  }

  /** Whether a chunk was counted already (chunk-count.ts). */
  isChunkCounted(site: string, token: string, chunk: number): Promise<boolean> {
    return isChunkCounted(this.ref, jobKey(site, token), chunk);
  }

  /** Counts a chunk exactly once (chunk-count.ts). */
  countChunk(
    site: string,
    token: string,
    chunk: number,
    counts: { succeeded: number; failed: number },
    /** The chunk was given up on: its part is the give-up variant (finalize reads the counted one). */
    gaveUp = false,
    /** The attempt the chunk belongs to (attempts.ts). */
    attempt = 1,
  ): Promise<ChunkCountResult> {
    return countChunk(this.ref, jobKey(site, token), chunk, counts, gaveUp, attempt);
  }
}

function toJob(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, ...rest } = item;
  for (const k of Object.keys(rest)) if (isCountingAttribute(k) || k === 'active') delete rest[k];
  return rest as unknown as Job;
}
