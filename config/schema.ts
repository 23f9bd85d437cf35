import { z } from 'zod';

/** Identifiers that appear in S3 keys, DynamoDB keys and queue names: lower-case, no separators we use. */
export const siteId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,30}$/, 'site ids are lower-case letters, digits and dashes (2-31 chars)');

export const recipientSchema = z.object({
  address: z.string().email(),
  active: z.boolean().default(true),
});

/** Office ids: they appear in DynamoDB keys (usage counters) and in job requests. */
export const officeId = z
  .string()
  .regex(/^[a-z0-9-]{1,32}$/, 'office ids are lower-case letters, digits and dashes');

/** The most workers one job may run at once, in any stage (also the most a job request may ask for). */
export const MAX_WORKERS_PER_JOB = 100;

/** The most records one worker may have in flight at once, in any stage (also the most a job may ask for). */
export const MAX_RECORD_CONCURRENCY = 1000;

export const officeSchema = z.object({
  id: officeId,
  name: z.string().min(1),
});

/** `HH:MM` (00:00-23:59) → hour and minute; undefined for anything else. The one parser of `sendAt`. */
export function parseSendAt(sendAt: string): { readonly hour: number; readonly minute: number } | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(sendAt);
  return m ? { hour: Number(m[1]), minute: Number(m[2]) } : undefined;
}

/** Names of a site's bulk-mail templates (a job names one in its `template` option). */
export const templateName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'template names are lower-case letters, digits and dashes');

/**
 * A bulk-mail template (the `mail` processor): `{{column}}` placeholders (Handlebars) filled from each row,
 * HTML-escaped in the HTML part only; a placeholder naming no column of the file fails the row.
 */
export const bulkMailTemplateSchema = z.object({
  /** The column holding each row's recipient address. */
  to: z.string().min(1).default('email'),
  subject: z.string().min(1),
  text: z.string().min(1),
  html: z.string().min(1),
});

/** A site's bulk mail: its own sender and templates; a job of the site can use nothing else. */
export const bulkMailSchema = z.object({
  /** From address; it must be within the stage's SES identity (`mail.identity`), checked below. */
  from: z.string().email(),
  /** By name; the first is the default. */
  templates: z
    .record(templateName, bulkMailTemplateSchema)
    .refine((t) => Object.keys(t).length > 0, 'a site with bulk mail needs at least one template'),
});

export const siteSchema = z
  .object({
    id: siteId,
    name: z.string().min(1),
    timeZone: z.string().default('Asia/Tokyo'),
    /** Local send time of the daily usage mail, HH:MM in `timeZone`. */
    sendAt: z
      .string()
      .refine((v) => parseSendAt(v) !== undefined, 'sendAt must be HH:MM (00:00-23:59)')
      .default('07:00'),
    offices: z.array(officeSchema).min(1),
    recipients: z.array(recipientSchema).min(1),
    bcc: z.string().email(),
    /** Bulk mail with the `mail` processor; a site without it cannot run `mail` jobs. */
    bulkMail: bulkMailSchema.optional(),
  })
  /** `sendAt` parsed once: the CDK schedule and the local scheduler read hour and minute from here. */
  .transform((s) => ({ ...s, sendAtTime: parseSendAt(s.sendAt)! }));

export const limitsSchema = z.object({
  /**
   * Largest body accepted by POST /jobs; larger files go through POST /uploads (presigned S3 POST).
   * API Gateway hands binary bodies to Lambda base64-encoded and Lambda takes 6 MB per request, so
   * about 4.4 MiB of CSV is the most a direct upload can carry.
   */
  directUploadMaxBytes: z.number().int().positive().max(4_500_000).default(4_500_000),
  /** Largest file accepted through the presigned route. */
  presignedUploadMaxBytes: z
    .number()
    .int()
    .positive()
    .default(2 * 1024 * 1024 * 1024),
  /** Largest single CSV record, in characters (RECORD_TOO_LARGE above it). */
  maxRecordBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /**
   * Source bytes per chunk. A chunk is a ~200-byte message naming a byte range of the source, so this sets
   * the work unit of a worker (one range read, one part written, one count), not a message size.
   */
  chunkMaxBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Most records in one chunk, so one chunk's work stays well inside the visibility timeout. */
  chunkMaxRecords: z.number().int().positive().default(10_000),
  maxWorkersPerJob: z.number().int().min(1).max(MAX_WORKERS_PER_JOB).default(4),
  /**
   * Most workers a job gets when it asks for no number (`workers`); never above `maxWorkersPerJob`. Unset on AWS,
   * where every Fargate task has vCPUs of its own. The local runtime sets it to this machine's cores
   * (`ROWFLEET_DEFAULT_WORKERS_PER_JOB`, core/deps.ts): its workers share them, and a worker process more than
   * the cores only adds its start-up and contention (`npm run bench`, 1M records: workers' phase 8.4–10.5 s with 4, 5.9–8.2 s with 2).
   */
  defaultWorkersPerJob: z.number().int().min(1).max(MAX_WORKERS_PER_JOB).optional(),
  /**
   * Records one worker may have in flight at once, whatever the processor declares or a job asks for
   * (core/processors/types.ts `concurrency`).
   */
  maxRecordConcurrency: z.number().int().min(1).max(MAX_RECORD_CONCURRENCY).default(200),
  /** Records per worker before another worker is worth starting. */
  recordsPerWorker: z.number().int().positive().default(50_000),
  retentionDays: z.number().int().positive().default(14),
  /**
   * The header line is kept in the job's DynamoDB item (400 KB at most, with everything else): a longer header,
   * or more columns, rejects the file (HEADER_TOO_LARGE) before anything is created for it.
   */
  maxHeaderBytes: z
    .number()
    .int()
    .positive()
    .max(128 * 1024)
    .default(64 * 1024),
  maxColumns: z.number().int().positive().max(10_000).default(2000),
});

/**
 * The pipeline's timings, each defined once: read by core (worker, reaper, finalize), the CDK stack (queue
 * attributes, task stop timeout, Lambda timeouts, the reaper's schedule) and the local runtime. The `local`
 * stage overrides a few of them (config/index.ts) so a local job reacts in seconds, not minutes.
 */
export const timingsSchema = z.object({
  /** Visibility timeout of a chunk message; a worker extends it while it works (heartbeat every third). */
  chunkVisibilitySeconds: z.number().int().min(2).max(43_200).default(120),
  /** Long-poll wait of a worker's receive (SQS allows 0-20). */
  workerWaitSeconds: z.number().int().min(0).max(20).default(20),
  /**
   * Work per chunk for a slow processor (declared `costMs`, a simulated delay, a rate limit): its chunks are
   * cut to about this many seconds, so every worker gets work and a job's progress moves at least this often.
   */
  chunkTargetSeconds: z.number().positive().default(1),
  /** Empty receives in a row, once every chunk is counted, before a worker exits. */
  workerIdlePolls: z.number().int().min(1).default(2),
  /** Receives of one message before SQS moves it to the stage's dead-letter queue. */
  maxReceiveCount: z.number().int().min(2).max(1000).default(5),
  /** A running job with chunks left and no live worker for this long is stalled: the reaper relaunches. */
  stallGraceSeconds: z.number().int().min(0).default(180),
  /** Seconds between two passes of the reaper. */
  reaperIntervalSeconds: z.number().int().min(1).default(300),
  /** Timeout of the upload function (it splits inline and on S3 events). */
  uploadTimeoutSeconds: z.number().int().min(1).max(900).default(600),
  /** Timeout of the finalize function. */
  finalizeTimeoutSeconds: z.number().int().min(1).max(900).default(600),
  /** How much longer than its function's timeout a queue keeps a message invisible. */
  queueMarginSeconds: z.number().int().min(0).default(300),
  /**
   * A failed worker launch (RunTask refused: vCPU quota, capacity, throttling) is retried by the reaper after
   * this long, doubling with each failure in a row up to `launchRetryMaxSeconds`.
   */
  launchRetryBaseSeconds: z.number().int().min(1).default(60),
  launchRetryMaxSeconds: z.number().int().min(1).default(1800),
  /** How long a presigned upload form (POST /uploads) may be used. */
  uploadFormSeconds: z
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(900),
  /** A presigned job whose file has not arrived this long after its form expired is EXPIRED by the reaper. */
  uploadExpiryGraceSeconds: z.number().int().min(0).default(300),
});

export type Timings = z.infer<typeof timingsSchema>;

/**
 * Timings that follow from the others, derived in one place. A queue feeding a function keeps a message
 * invisible longer than the function may run (+ the margin), so one message is never handled twice at once; a
 * finalize that started longer ago than its queue's visibility (+ 1 min) died, and its lease may be taken over.
 */
export function derivedTimings(t: Timings) {
  const finalizeVisibilitySeconds = t.finalizeTimeoutSeconds + t.queueMarginSeconds;
  const workerStopTimeoutSeconds = Math.min(120, t.chunkVisibilitySeconds);
  return {
    uploadEventsVisibilitySeconds: t.uploadTimeoutSeconds + t.queueMarginSeconds,
    finalizeVisibilitySeconds,
    finalizeLeaseSeconds: finalizeVisibilitySeconds + 60,
    /** A stopped worker (SIGTERM) finishes the chunks in hand: ECS waits this long before SIGKILL. */
    workerStopTimeoutSeconds,
    /**
     * Records still running this long after the SIGTERM are aborted (their `ctx.signal`), leaving them 10 s to
     * answer before the SIGKILL; their chunks go back to the queue.
     */
    workerAbortRecordsSeconds: Math.max(0, workerStopTimeoutSeconds - 10),
    /**
     * A retry's or a resubmission's attempt whose chunks are still not all sent this long after the write that
     * started it lost its sender: the API call that started it runs in the upload function, which lives no longer
     * than its timeout (a timeout or an OOM ends it between the write and the last send). The reaper then sends
     * them again (core/reaper/reaper.ts). The margin spares a sender that is merely slow a second send (which would
     * be harmless: a chunk sent twice is counted once).
     */
    attemptSendGraceSeconds: t.uploadTimeoutSeconds + t.queueMarginSeconds,
  };
}

/** CloudWatch Logs accepts only these retention periods (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Infrastructure settings of a stage, read by the CDK app only (the local runtime ignores them). */
export const infraSchema = z.object({
  /** Retention of every log group (Lambda, worker, API access logs) and of the S3 access/flow logs. */
  logRetentionDays: z
    .number()
    .int()
    .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
      message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
    })
    .default(30),
  /** Keep the bucket, table and log groups when the stack is deleted (and protect the table). */
  retainData: z.boolean().default(false),
  /** API Gateway stage throttling: steady requests per second and burst. */
  apiRateLimit: z.number().positive().default(20),
  apiBurstLimit: z.number().int().positive().default(40),
  /** Fargate worker size (a valid Fargate cpu/memory pair) and CPU architecture. */
  workerCpu: z.number().int().default(512),
  workerMemoryMiB: z.number().int().default(1024),
  workerArchitecture: z.enum(['ARM64', 'X86_64']).default('ARM64'),
  /** Subscribed by e-mail to the ops alarm topic when set. */
  opsEmail: z.string().email().optional(),
  /**
   * Where the workers run (lib/workers.ts, docs/DEPLOY.md "Networking"). `public`: public subnets that map no
   * public IP on launch; each task asks for its own address in RunTask (`assignPublicIp`), reaches AWS APIs through
   * the internet gateway, no NAT gateway. `private`: isolated subnets (no route to the internet) with interface
   * endpoints for SQS, ECR, CloudWatch Logs and SES; no public address anywhere, endpoints paid by the hour —
   * a `webhook` processor then reaches no host outside AWS.
   */
  workerNetwork: z.enum(['public', 'private']).default('public'),
  /**
   * Encryption of the data bucket (uploads/, jobs/, results/: the CSV files hold personal data). `S3_MANAGED`:
   * SSE-S3. `KMS`: a customer-managed KMS key of the stage (rotated yearly) with S3 Bucket Keys, used only by the
   * roles that read or write the bucket (lib/storage.ts grantDataKey); see docs/DEPLOY.md "Data encryption".
   */
  dataEncryption: z.enum(['S3_MANAGED', 'KMS']).default('S3_MANAGED'),
});

/** The grant item keeps one entry per job holding workers, so a budget this large still fits in one item. */
export const MAX_BUDGET_WORKERS = 2000;

/**
 * The stage-wide worker budget (core/budget/policy.ts, core/budget/store.ts): the most row workers running at once
 * in the stage, shared fairly among the sites with work. Sized by default for a new account: Fargate's
 * default "Fargate On-Demand vCPU resource count" quota is 6 vCPUs per Region (AWS General Reference, ECS
 * endpoints and quotas), so 12 workers of 0.5 vCPU (`infra.workerCpu` 512). See config/budget.ts.
 */
export const workerBudgetSchema = z.object({
  /** Most workers running at once. @default the account's vCPU quota ÷ the worker's vCPUs (12 for 6 ÷ 0.5) */
  maxWorkers: z.number().int().min(1).max(MAX_BUDGET_WORKERS).optional(),
  /** The account's Fargate On-Demand vCPU quota in the stage's Region, which the default is sized from. */
  vcpuQuota: z.number().positive().default(6),
  /** Weights (default 1) and caps of sites, by site id; a site not listed has weight 1 and no cap. */
  sites: z
    .record(
      siteId,
      z.object({
        weight: z.number().positive().default(1),
        /** Most workers the site's jobs may hold at once. */
        maxWorkers: z.number().int().min(0).optional(),
      }),
    )
    .default({}),
  /** The alarm fires when a job has waited this long for its first worker. */
  queueWaitAlarmSeconds: z.number().int().positive().default(600),
});

/** The usage mails' sender: the From address and the SES identity (domain or address) it is verified under. */
export const mailSchema = z
  .object({
    /** From address of the usage mails; SES must have it (or its domain) verified in the stage's region. */
    from: z.string().email().default('no-reply@rowfleet.example.com'),
    /** The SES identity the From address sends under. @default the From address's domain */
    identity: z.string().min(1).optional(),
    /**
     * SES's sending rate of the stage's account (mails per second): every mail of the stage's `mail` jobs goes
     * through one shared limiter at this rate. The default is SES's usual quota out of the sandbox.
     */
    ratePerSecond: z.number().positive().default(14),
  })
  .transform((m) => ({ ...m, identity: m.identity ?? m.from.slice(m.from.indexOf('@') + 1) }));

export const stageSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9]{1,15}$/, 'stage names are short lower-case words'),
  account: z.string().optional(),
  region: z.string().default('ap-northeast-1'),
  limits: limitsSchema.default(limitsSchema.parse({})),
  timings: timingsSchema.default(timingsSchema.parse({})),
  notifications: z
    .object({
      success: z.boolean().default(false),
      partial: z.boolean().default(true),
      failure: z.boolean().default(true),
    })
    .default({ success: false, partial: true, failure: true }),
  infra: infraSchema.default(infraSchema.parse({})),
  mail: mailSchema.prefault({}),
  workerBudget: workerBudgetSchema.prefault({}),
  /**
   * Yen per US dollar for the check's cost estimate (POST /jobs?check=true): its AWS list prices (config/prices.ts)
   * are in USD, shown in JPY too at this rate. A configured figure, not a market quote: set it to the rate your
   * company books AWS invoices at.
   */
  jpyPerUsd: z.number().positive().default(150),
});

export const configSchema = z
  .object({
    stages: z.array(stageSchema).min(1),
    sites: z.array(siteSchema).min(1),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    for (const s of cfg.sites) {
      if (seen.has(s.id)) ctx.addIssue({ code: 'custom', message: `duplicate site id "${s.id}"` });
      seen.add(s.id);
    }
    for (const st of cfg.stages) {
      // Workers may send only through the stage's SES identity (lib/workers.ts): every site's sender is in it.
      for (const s of cfg.sites) {
        const from = s.bulkMail?.from;
        if (from && from !== st.mail.identity && !from.endsWith(`@${st.mail.identity}`))
          ctx.addIssue({
            code: 'custom',
            message: `stage ${st.name}: site ${s.id} sends bulk mail from ${from}, outside the SES identity ${st.mail.identity}`,
          });
      }
      for (const id of Object.keys(st.workerBudget.sites)) {
        if (!seen.has(id))
          ctx.addIssue({
            code: 'custom',
            message: `stage ${st.name}: workerBudget names unknown site "${id}"`,
          });
      }
    }
  });

export type SiteConfig = z.infer<typeof siteSchema>;
export type StageConfig = z.infer<typeof stageSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type InfraConfig = z.infer<typeof infraSchema>;
export type MailConfig = z.infer<typeof mailSchema>;
export type BulkMailConfig = z.infer<typeof bulkMailSchema>;
export type BulkMailTemplate = z.infer<typeof bulkMailTemplateSchema>;
export type WorkerBudgetConfig = z.infer<typeof workerBudgetSchema>;
export type RowfleetConfig = z.infer<typeof configSchema>;
