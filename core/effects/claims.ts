import { GetCommand, paginateQuery, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../aws/clients.ts';
import { setFields, sitePk, updateIf } from '../shared/dynamo.ts';
import { expiresAt } from '../jobs/store.ts';
import type { RowOutput } from '../processors/types.ts';
import { RETRIED_CODES } from '../stop/rules.ts';

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
 * The same claims decide what a record whose chunk was never counted became ({@link claimOutcome}): a chunk
 * given up (core/work/chunk-part.ts `failedChunk`) and the finalize of a job stopped early
 * (core/finalize/stopped.ts) report such a record by its claim, never as a failure a retry would run again.
 *
 * Cost: one write unit for the claim and one for the outcome (items stay under 1 KB unless the outputs are
 * larger); a redelivered record adds one strongly consistent read; a stopped job's finalize one Query of the job's
 * claims (read units ≈ their bytes / 4 KB). No other processor pays anything.
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

/** The sort-key prefix of every claim of one job (the `#` after the token keeps another token's claims out). */
const jobClaimsPrefix = (site: string, token: string) => `EFFECT#${site}#${token}#`;

/** Claims read per Query page (each page is also capped at 1 MB by DynamoDB). */
const CLAIMS_PAGE = 500;

/** What a record's claim says it became: its result (the kept outputs), or its failure code and message. */
export type ClaimOutcome =
  { readonly outputs: readonly RowOutput[] } | { readonly code: string; readonly message: string };

/**
 * The code of a record whose effect happened (its claim is DONE) but whose outputs were too large to keep with the
 * claim ({@link KEPT_OUTPUT_BYTES}): its result cannot be rebuilt, so it is in errors.csv (counted as failed,
 * since the zip has no entry for it) with this code, and never run again — its effect happened.
 */
export const RESULT_NOT_KEPT = 'DONE_RESULT_NOT_KEPT';

/**
 * What a claim says about its record, for a delivery that finds it taken or a record whose chunk was never
 * counted: undefined when nothing happened (no claim, or RELEASED: the record may run); DONE is the record's
 * result (its kept outputs) — or {@link RESULT_NOT_KEPT} when they were too large to keep; FAILED is its own code;
 * CLAIMED (no outcome: its worker died between the claim and the answer, or is still at it) is IN_DOUBT. A retry
 * runs none of these codes (core/stop/rules.ts RETRIED_CODES) — unless a processor's RecordError took one of the
 * pipeline's own, as the simulation's transient PROCESSING_FAILED does once its attempts are spent.
 */
export function claimOutcome(c: EffectClaim | undefined): ClaimOutcome | undefined {
  if (!c || c.status === 'RELEASED') return undefined;
  if (c.status === 'DONE') {
    if (c.outputsKept !== false) return { outputs: c.outputs ?? [] };
    return {
      code: RESULT_NOT_KEPT,
      message: `done (claimed by ${c.claimedBy} at ${c.claimedAt}): its effect happened, but its result was over the ${KEPT_OUTPUT_BYTES / 1024} KiB kept with a claim and cannot be rebuilt; not tried again`,
    };
  }
  if (c.status === 'FAILED') return { code: c.code ?? 'EFFECT_FAILED', message: c.message ?? '' };
  return {
    code: 'IN_DOUBT',
    message: `claimed by ${c.claimedBy} at ${c.claimedAt}, outcome never recorded (its worker died or is still at it); not tried again`,
  };
}

/** A claim item as read from the table (outputs back as strings or Buffers). */
function toClaim(item: Record<string, unknown>): EffectClaim {
  const { pk: _pk, sk: _sk, expiresAt: _e, outputs, ...rest } = item;
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
   * retry runs again (core/stop/rules.ts RETRIED_CODES): its effect certainly did not happen. An attempt that
   * runs a resubmitted file (`corrected`: the record's values may be fixed) may take any FAILED claim of an
   * attempt before, a processor's own code included (the invalid address a user corrected): FAILED always means
   * the effect did not happen. DONE and CLAIMED claims are never taken again by any attempt, nor, by a retry,
   * FAILED ones with a processor's own code (the same values would fail the same way).
   */
  async claim(
    site: string,
    token: string,
    n: number,
    claimId: string,
    by: string,
    attempt = 1,
    corrected = false,
  ): Promise<ClaimResult> {
    this.stats.writes++;
    const retried = RETRIED_CODES.map((_, i) => `:retried${i}`);
    const codes = corrected ? '' : ` AND #code IN (${retried.join(', ')})`;
    const won = await updateIf({ table: this.table, ddb: this.ddb }, claimKey(site, token, n), {
      UpdateExpression:
        'SET #status = :claimed, claimId = :id, claimedAt = :at, claimedBy = :by, expiresAt = :exp, claimAttempt = :attempt ' +
        'REMOVE outputs, outputsKept, code, message',
      ConditionExpression:
        'attribute_not_exists(pk) OR #status = :released' +
        (attempt > 1
          ? ` OR (#status = :failed${codes} AND ` +
            '(attribute_not_exists(claimAttempt) OR claimAttempt < :attempt))'
          : ''),
      ExpressionAttributeNames: {
        '#status': 'status',
        ...(attempt > 1 && !corrected ? { '#code': 'code' } : {}),
      },
      ExpressionAttributeValues: {
        ':attempt': attempt,
        ...(attempt > 1 ? { ':failed': 'FAILED' } : {}),
        ...(attempt > 1 && !corrected
          ? Object.fromEntries(RETRIED_CODES.map((c, i) => [`:retried${i}`, c]))
          : {}),
        ':claimed': 'CLAIMED',
        ':released': 'RELEASED',
        ':id': claimId,
        ':at': new Date().toISOString(),
        ':by': by,
        ':exp': expiresAt(this.retentionDays),
      },
    });
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
    return r.Item ? toClaim(r.Item) : undefined;
  }

  /**
   * The claims of job `token` for the records `wanted` picks, by record number: one Query of the site's partition
   * by the job's sort-key prefix (strongly consistent, page by page), far cheaper than a read per record when
   * most records were never claimed. Claims of other records are read and dropped, never kept in memory.
   */
  async ofJob(
    site: string,
    token: string,
    wanted: (n: number) => boolean,
  ): Promise<Map<number, EffectClaim>> {
    const prefix = jobClaimsPrefix(site, token);
    const found = new Map<number, EffectClaim>();
    const pages = paginateQuery(
      { client: this.ddb, pageSize: CLAIMS_PAGE },
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': sitePk(site), ':prefix': prefix },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      this.stats.reads++;
      for (const item of page.Items ?? []) {
        const rest = String(item.sk).slice(prefix.length);
        const n = Number(rest);
        if (!/^[1-9]\d*$/.test(rest) || !wanted(n)) continue;
        found.set(n, toClaim(item));
      }
    }
    return found;
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
    await updateIf({ table: this.table, ddb: this.ddb }, claimKey(site, token, n), {
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: 'claimId = :id AND #fs = :claimed',
      ExpressionAttributeNames: { ...names, '#fs': 'status' },
      ExpressionAttributeValues: { ...values, ':id': claimId, ':claimed': 'CLAIMED' },
    });
  }
}
