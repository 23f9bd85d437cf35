import type { RegionPrices } from '../../config/prices.ts';
import { MULTIPART_PART_BYTES } from '../aws/objects.ts';
import type { CostLine, Estimate, Service } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { CostLine, Estimate, Service };

/**
 * The check's estimate of a run (POST /jobs?check=true): how long its records take and what the run costs at AWS
 * list prices. Pure arithmetic over what the check found (records, bytes, the split's chunk plan, the workers) and
 * what the processor declares (its per-worker rate, a stage-wide rate limit, side effects, mails); the figures the
 * pipeline's requests follow from are named below with where they come from. An estimate, not a bill: free tiers,
 * API Gateway, CloudWatch Logs and the status polls of a client are left out (docs/check.md).
 */

/**
 * Records per second one worker of a CPU-bound processor (no declared cost: `json`, `report`) gets through, per
 * vCPU: `npm run bench` measured about 39,000 per worker process on one core (1,000,000 `json` records, two
 * workers, workers' phase 6.5 s); a Fargate worker gets its share of a vCPU (`infra.workerCpu`).
 */
export const CPU_BOUND_RECORDS_PER_VCPU_SECOND = 39_000;
/** From RunTask to a worker's first receive on Fargate (image pull, start): 30-60 s (README, the simulation). */
export const FARGATE_START_SECONDS = 45;
/** The same for a local worker process (a Node process loading the SDK). */
export const LOCAL_START_SECONDS = 2;
/** Fargate bills a task per second with a one-minute minimum. */
export const FARGATE_MIN_BILLED_SECONDS = 60;
/** The upload and finalize functions' memory (lib/rowfleet-stack.ts, `memorySize: 2048`). */
export const FUNCTION_GB = 2;
/** The split's validation pass on Lambda, UTF-8 bytes per second (the bench: 93-242 MiB/s on a workstation core). */
export const SPLIT_BYTES_PER_SECOND = 50 * 1024 * 1024;
/** The finalize's records per second (the bench: 1,000,000 records in 4.3-4.6 s). */
export const FINALIZE_RECORDS_PER_SECOND = 200_000;
/** A grant pass (upload function, one per worker leaving and one per finalize). */
export const GRANT_PASS_SECONDS = 0.2;
/** The rate limiter's windows: max(50 ms, 1 s ÷ rate) (core/work/rate-limiter.ts), one write per worker and window. */
export const RATE_WINDOW_MIN_SECONDS = 0.05;

/** What an estimate is computed from. */
export interface EstimateInput {
  /** Records the run would process (accepted ones). */
  readonly records: number;
  /** The upload's size in bytes. */
  readonly bytes: number;
  /** The upload is not UTF-8: the split writes a UTF-8 copy for the workers. */
  readonly utf8Copy: boolean;
  /** Chunks the split would cut (its plan). */
  readonly chunks: number;
  /** Workers the job would ask for (core/split/worker-count.ts). */
  readonly workers: number;
  /** Workers the stage's budget would grant it now (0: it would wait in the queue). */
  readonly workersNow: number;
  /** Records per second of one worker by the processor's cost (Infinity: CPU-bound). */
  readonly workerRecordsPerSecond: number;
  /** The processor's stage-wide rate limit, if any (records per second). */
  readonly ratePerSecond?: number;
  /** Each record is claimed and its outcome recorded (two writes). */
  readonly sideEffects: boolean;
  /** Each record sends one mail through SES. */
  readonly mails: boolean;
  /** Bytes a record adds to the zip (its entries), from the samples. */
  readonly outputBytesPerRecord: number;
  /** Bytes of the job item each of its writes carries (the header is kept on it). */
  readonly jobItemBytes: number;
  readonly worker: { readonly vcpu: number; readonly memoryGb: number; readonly arm: boolean };
  /** Local worker processes start in seconds, Fargate tasks in tens of seconds. */
  readonly local: boolean;
  /** Empty receives each worker makes before it leaves, and the long poll of each (core/work/worker.ts). */
  readonly idlePolls: number;
  readonly waitSeconds: number;
  readonly retentionDays: number;
  readonly region: string;
  readonly prices: RegionPrices;
  readonly pricesAsOf: string;
  readonly jpyPerUsd: number;
}

/** USD to 6 decimals, JPY to 2, seconds to 0.1: what a person reads; the sums are of the rounded lines. */
const usd6 = (x: number) => Math.round(x * 1e6) / 1e6;
const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 1));

/** Workers the run is timed with: what the budget grants now, else (a full budget) what the job asks for. */
export function runningWorkers(i: Pick<EstimateInput, 'workers' | 'workersNow'>): number {
  return i.workersNow > 0 ? Math.min(i.workers, i.workersNow) : i.workers;
}

/** Seconds the records take at the running workers' rate, bounded by the stage-wide rate limit. */
export function processingSeconds(
  i: Pick<
    EstimateInput,
    'records' | 'workers' | 'workersNow' | 'workerRecordsPerSecond' | 'ratePerSecond' | 'worker'
  >,
): number {
  const running = runningWorkers(i);
  if (i.records <= 0 || running <= 0) return 0;
  const perWorker = Number.isFinite(i.workerRecordsPerSecond)
    ? i.workerRecordsPerSecond
    : CPU_BOUND_RECORDS_PER_VCPU_SECOND * i.worker.vcpu;
  const rate = Math.min(running * perWorker, i.ratePerSecond ?? Infinity);
  return i.records / rate;
}

/** The estimate of a run: its time and its cost per service at list prices, in USD and JPY. */
export function estimateRun(i: EstimateInput): Estimate {
  const p = i.prices;
  const running = runningWorkers(i);
  const work = processingSeconds(i);
  const startSeconds = i.local ? LOCAL_START_SECONDS : FARGATE_START_SECONDS;
  const seconds = i.records > 0 ? startSeconds + work : 0;
  const tail = i.idlePolls * i.waitSeconds;
  // Fargate bills from the pull of the image to the task's end: its start, the records, the last idle polls.
  const billed = running > 0 ? Math.max(FARGATE_MIN_BILLED_SECONDS, FARGATE_START_SECONDS + work + tail) : 0;
  const fp = i.worker.arm ? p.fargate.arm : p.fargate.x86;
  const taskHourUsd = i.worker.vcpu * fp.vcpuHour.usd + i.worker.memoryGb * fp.gbHour.usd;
  const fargate = (running * billed * taskHourUsd) / 3600;

  // Lambda: the upload (split inline), the finalize, and a grant pass per worker leaving plus one per finalize.
  const splitSeconds = 0.3 + i.bytes / SPLIT_BYTES_PER_SECOND;
  const finalizeSeconds = 0.5 + i.records / FINALIZE_RECORDS_PER_SECOND;
  const passes = running + 1;
  const invocations = 2 + passes;
  const gbSeconds = FUNCTION_GB * (splitSeconds + finalizeSeconds + passes * GRANT_PASS_SECONDS);
  const lambda = invocations * p.lambda.request.usd + gbSeconds * p.lambda.armGbSecond.usd;

  // SQS: the queue created and deleted, chunks sent 10 a batch, each received and deleted once, each worker's idle
  // receives, and the finalize request and grant-pass requests (each sent, received, deleted).
  const sqsRequests = 2 + Math.ceil(i.chunks / 10) + 2 * i.chunks + running * i.idlePolls + 3 * (1 + passes);
  const sqs = sqsRequests * p.sqs.request.usd;

  // DynamoDB: every write of the job item costs its size in 1 KB units (it keeps the header): created, split
  // claimed and recorded, 4 transitions, one count per chunk; the budget (a request, a grant and a release per
  // worker, the finish), the usage counters, the claims of a processor with side effects, the rate limiter's
  // windows. Reads: the job item per worker start and per chunk, the budget per pass.
  const itemUnits = Math.max(1, Math.ceil(i.jobItemBytes / 1024));
  const rateWindows =
    i.ratePerSecond !== undefined && i.records > 0
      ? Math.min(
          i.records,
          Math.ceil((running * work) / Math.max(RATE_WINDOW_MIN_SECONDS, 1 / i.ratePerSecond)),
        )
      : 0;
  const writes =
    itemUnits * (7 + i.chunks) + (2 + 2 * running) + 2 + (i.sideEffects ? 2 * i.records : 0) + rateWindows;
  const reads = itemUnits * (2 + running + i.chunks) + passes;
  const dynamodb = writes * p.dynamodb.writeUnit.usd + reads * p.dynamodb.readUnit.usd;

  // S3: the upload, its UTF-8 copy (multipart), the rejected records and chunk plan, one part per chunk, the zip
  // (multipart); reads: each chunk's range, each part twice at the finalize, the source again for results.csv.
  const zipBytes = i.records * i.outputBytesPerRecord + i.bytes + 200 * i.records;
  const multipart = (b: number) => 2 + Math.ceil(b / MULTIPART_PART_BYTES);
  const puts = 1 + (i.utf8Copy ? multipart(i.bytes) : 0) + 2 + i.chunks + multipart(zipBytes);
  const gets = 3 * i.chunks + 2;
  const storedGb = (i.bytes * (i.utf8Copy ? 2 : 1) + zipBytes) / 1024 ** 3;
  const storage = storedGb * (i.retentionDays / 30) * p.s3.gbMonth.usd;
  const s3 = puts * p.s3.put.usd + gets * p.s3.get.usd + storage;

  const mails = i.mails ? i.records : 0;
  const ses = mails * p.ses.message.usd;

  const breakdown: CostLine[] = [
    {
      service: 'fargate',
      usd: usd6(fargate),
      basis: `${running} task${running === 1 ? '' : 's'} × (${fmt(i.worker.vcpu)} vCPU, ${fmt(i.worker.memoryGb)} GB${i.worker.arm ? ', ARM' : ''}) × ${fmt(Math.round(billed))} s`,
    },
    {
      service: 'lambda',
      usd: usd6(lambda),
      basis: `${invocations} invocations, ${fmt(Math.round(gbSeconds * 10) / 10)} GB-s`,
    },
    {
      service: 'sqs',
      usd: usd6(sqs),
      basis: `${sqsRequests} requests (${i.chunks} chunk${i.chunks === 1 ? '' : 's'})`,
    },
    {
      service: 'dynamodb',
      usd: usd6(dynamodb),
      basis: `${writes} write units, ${reads} read units${i.sideEffects ? ` (2 claim writes per record)` : ''}`,
    },
    {
      service: 's3',
      usd: usd6(s3),
      basis: `${puts} PUT, ${gets} GET, ${fmt(Math.round(storedGb * 1024 * 10) / 10)} MB kept ${i.retentionDays} days`,
    },
    { service: 'ses', usd: usd6(ses), basis: `${mails} mails` },
  ];
  const total = usd6(breakdown.reduce((n, l) => n + l.usd, 0));
  return {
    workers: i.workers,
    workersNow: i.workersNow,
    seconds: Math.round(seconds * 10) / 10,
    region: i.region,
    usd: total,
    jpy: Math.round(total * i.jpyPerUsd * 100) / 100,
    jpyPerUsd: i.jpyPerUsd,
    pricesAsOf: i.pricesAsOf,
    breakdown,
  };
}
