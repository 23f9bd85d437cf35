import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../aws/clients.ts';
import { setFields, sitePk, unlessConditionFails } from '../shared/dynamo.ts';
import { expiresAt } from '../jobs/store.ts';
import type { RowOutput } from './processors/types.ts';
import { RETRIED_CODES } from '../jobs/stop.ts';

/**
 * Side effects at most once per record (processors with `sideEffects`). Before a record's effect, its worker
 * claims the record with a conditional write; after it, the outcome is recorded on the claim:
 *
 *   pk `SITE#<site>`, sk `EFFECT#<site>#<token>#<n>` (the record's idempotency key), in the site's own partition:
 *   `status` CLAIMED → DONE (with the record's outputs) | FAILED (the effect certainly did not happen: its code)
 *   | RELEASED (it did not happen and may be tried again: the worker stopped first).
 *
 * A redelivered chunk (a duplicate, a crash, a kill) finds the claim: DONE is replayed from the stored outputs,
 * FAILED reported again, and a claim still CLAIMED — its worker died between the claim and the answer, or is
 * still at it — is reported as IN_DOUBT and never tried again. Each claim carries `expiresAt` (the job's
 * retention), so DynamoDB's TTL removes them as it removes finished jobs.
 *
 * Cost: one write unit for the claim and one for the outcome (items stay under 1 KB unless the outputs are
 * larger); a redelivered record adds one strongly consistent read. No other processor pays anything.
 */
export type ClaimStatus = 'CLAIMED' | 'DONE' | 'FAILED' | 'RELEASED';

export interface EffectClaim {
  readonly status: ClaimStatus;
  readonly claimId: string;
  readonly claimedAt: string;
  /** The worker that claimed (host/pid). */
  readonly claimedBy: string;
  /** The job's attempt that claimed (core/jobs/attempts.ts; absent on claims older than attempts). */
  readonly claimAttempt?: number;
  /** DONE: the record's outputs (omitted when larger than {@link KEPT_OUTPUT_BYTES}). */
  readonly outputs?: readonly RowOutput[];
  readonly outputsKept?: boolean;
  /** FAILED: the record's code and message. */
  readonly code?: string;
  readonly message?: string;
}

/** Outputs of a record kept with its outcome, so a redelivered chunk rebuilds the record's entries. */
export const KEPT_OUTPUT_BYTES = 64 * 1024;

/** The record's idempotency key: site, job token and record number. */
export const idempotencyKey = (site: string, token: string, n: number): string => `${site}#${token}#${n}`;

const claimKey = (site: string, token: string, n: number) => ({
  pk: sitePk(site),
  sk: `EFFECT#${idempotencyKey(site, token, n)}`,
});

export type ClaimResult = { readonly won: true } | { readonly won: false; readonly claim?: EffectClaim };

export class EffectClaims {
  /** DynamoDB requests made (for the benchmark's cost figures). */
  readonly stats = { writes: 0, reads: 0 };

  constructor(
    private readonly table: string,
    /** How long a claim stays (the job's retention: `limits.retentionDays`). */
    private readonly retentionDays: number,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
  ) {}

  /**
   * Claims record `n` for `claimId` unless it was claimed before (and not released). A claim found with the
   * same `claimId` is this caller's own (an earlier write whose answer was lost): won. A retry's attempt
   * (`attempt` > 1, core/jobs/attempts.ts) may also take a claim an attempt before settled FAILED with a code a
   * retry runs again (core/jobs/stop.ts RETRIED_CODES): its effect certainly did not happen. DONE and CLAIMED
   * claims, and FAILED ones with a processor's own code, are never taken again by any attempt.
   */
  async claim(
    site: string,
    token: string,
    n: number,
    claimId: string,
    by: string,
    attempt = 1,
  ): Promise<ClaimResult> {
    this.stats.writes++;
    const retried = RETRIED_CODES.map((_, i) => `:retried${i}`);
    const won = await unlessConditionFails(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: claimKey(site, token, n),
          UpdateExpression:
            'SET #status = :claimed, claimId = :id, claimedAt = :at, claimedBy = :by, expiresAt = :exp, claimAttempt = :attempt ' +
            'REMOVE outputs, outputsKept, code, message',
          ConditionExpression:
            'attribute_not_exists(pk) OR #status = :released' +
            (attempt > 1
              ? ` OR (#status = :failed AND #code IN (${retried.join(', ')}) AND ` +
                '(attribute_not_exists(claimAttempt) OR claimAttempt < :attempt))'
              : ''),
          ExpressionAttributeNames: { '#status': 'status', ...(attempt > 1 ? { '#code': 'code' } : {}) },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ...(attempt > 1
              ? {
                  ':failed': 'FAILED',
                  ...Object.fromEntries(RETRIED_CODES.map((c, i) => [`:retried${i}`, c])),
                }
              : {}),
            ':claimed': 'CLAIMED',
            ':released': 'RELEASED',
            ':id': claimId,
            ':at': new Date().toISOString(),
            ':by': by,
            ':exp': expiresAt(this.retentionDays),
          },
        }),
      ),
    );
    if (won) return { won: true };
    const claim = await this.get(site, token, n);
    // Stryker disable next-line OptionalChaining: the claim was refused because the item exists; claims are never deleted while their job lives
    return claim?.claimId === claimId && claim.status === 'CLAIMED' ? { won: true } : { won: false, claim };
  }

  /** The effect happened: the record's outputs are kept with the claim. */
  done(
    site: string,
    token: string,
    n: number,
    claimId: string,
    outputs: readonly RowOutput[],
  ): Promise<void> {
    const bytes = outputs.reduce((s, o) => s + o.name.length + o.data.length, 0);
    const kept = bytes <= KEPT_OUTPUT_BYTES;
    return this.settle(site, token, n, claimId, {
      status: 'DONE',
      outputsKept: kept,
      ...(kept ? { outputs: outputs.map((o) => ({ name: o.name, data: o.data })) } : {}),
    });
  }

  /** The effect certainly did not happen and must not be tried again for this record: its code and message. */
  failed(site: string, token: string, n: number, claimId: string, code: string, message: string) {
    return this.settle(site, token, n, claimId, { status: 'FAILED', code, message });
  }

  /** The effect certainly did not happen and may be tried again (the worker is stopping). */
  release(site: string, token: string, n: number, claimId: string) {
    return this.settle(site, token, n, claimId, { status: 'RELEASED' });
  }

  async get(site: string, token: string, n: number): Promise<EffectClaim | undefined> {
    this.stats.reads++;
    const r = await this.ddb.send(
      // Stryker disable next-line BooleanLiteral: dynalite (the emulator) always reads consistently; only AWS can tell a consistent read from an eventual one
      new GetCommand({ TableName: this.table, Key: claimKey(site, token, n), ConsistentRead: true }),
    );
    if (!r.Item) return undefined;
    const { pk: _pk, sk: _sk, expiresAt: _e, outputs, ...rest } = r.Item;
    return {
      ...(rest as Omit<EffectClaim, 'outputs'>),
      ...(outputs
        ? {
            outputs: (outputs as { name: string; data: string | Uint8Array }[]).map((o) => ({
              name: o.name,
              data: typeof o.data === 'string' ? o.data : Buffer.from(o.data),
            })),
          }
        : {}),
    };
  }

  /** Records an outcome on this caller's claim (a claim taken over since is left alone). */
  private async settle(
    site: string,
    token: string,
    n: number,
    claimId: string,
    fields: Record<string, unknown>,
  ): Promise<void> {
    const { sets, names, values } = setFields(fields);
    this.stats.writes++;
    await unlessConditionFails(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: claimKey(site, token, n),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: 'claimId = :id AND #fs = :claimed',
          ExpressionAttributeNames: { ...names, '#fs': 'status' },
          ExpressionAttributeValues: { ...values, ':id': claimId, ':claimed': 'CLAIMED' },
        }),
      ),
    );
  }
}
