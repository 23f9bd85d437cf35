import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../../config/index.ts';
import { dynamoClient } from '../aws/clients.ts';
import type { Job } from '../jobs/store.ts';
import { attemptsOf, currentAttempt } from '../jobs/attempts.ts';
import { queryItems, sitePk, updateIf } from '../shared/dynamo.ts';
import { jobLogger } from '../shared/log.ts';
import { localDay } from './days.ts';
import type { UsageFigures } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { UsageFigures };

export const NO_USAGE: UsageFigures = { jobs: 0, rows: 0, failedRows: 0, rejectedJobs: 0 };

export function addUsage(a: UsageFigures, b: UsageFigures): UsageFigures {
  return {
    jobs: a.jobs + b.jobs,
    rows: a.rows + b.rows,
    failedRows: a.failedRows + b.failedRows,
    rejectedJobs: a.rejectedJobs + b.rejectedJobs,
  };
}

/** The office key of a job recorded without an office (office ids never contain `_`). */
export const NO_OFFICE = '_none';

/**
 * What one finished job adds: one job; a REJECTED job has no records. A retry's attempt (core/jobs/attempts.ts) adds
 * the records it ran — its successes and failures — and no job (it is the same job).
 */
export function jobUsage(job: Job): UsageFigures {
  if (currentAttempt(job) > 1) {
    const a = attemptsOf(job).at(-1)!;
    return { jobs: 0, rows: a.succeeded ?? 0, failedRows: a.failed ?? 0, rejectedJobs: 0 };
  }
  if (job.state === 'REJECTED') return { jobs: 1, rows: 0, failedRows: 0, rejectedJobs: 1 };
  return { jobs: 1, rows: job.succeeded, failedRows: job.failed + (job.rejected ?? 0), rejectedJobs: 0 };
}

/** Figures per office (office id → figures) of a site over some days. */
export type OfficeUsage = ReadonlyMap<string, UsageFigures>;

/** Usage counters live in the site's own partition, one item per day and office. */
const sk = (day: string, office: string) => `USAGE#${day}#${office}`;

/**
 * Usage counters in DynamoDB: pk `SITE#<site>`, sk `USAGE#<day>#<office>`. A job is added once: one UpdateItem
 * ADDs its figures and its token to the item's token set, on the condition that the set does not hold the token
 * yet — so a redelivered or concurrent recording changes nothing. (One item holds the tokens of its day and
 * office: about 10,000 jobs per office and day fit in DynamoDB's 400 KB item limit.)
 */
export class UsageStore {
  constructor(
    private readonly table: string,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
  ) {}

  /** Adds `figures` for job `token`; false when that job was already counted. */
  async add(
    site: string,
    day: string,
    office: string,
    token: string,
    figures: UsageFigures,
  ): Promise<boolean> {
    const added = await updateIf(
      { table: this.table, ddb: this.ddb },
      { pk: sitePk(site), sk: sk(day, office) },
      {
        UpdateExpression:
          'ADD #tokens :token, #jobs :jobs, #rows :rows, #failedRows :failedRows, #rejectedJobs :rejectedJobs SET #site = :site, #day = :day, #office = :office',
        ConditionExpression: 'NOT contains(#tokens, :tokenValue)',
        ExpressionAttributeNames: {
          '#tokens': 'tokens',
          '#jobs': 'jobs',
          '#rows': 'rows',
          '#failedRows': 'failedRows',
          '#rejectedJobs': 'rejectedJobs',
          '#site': 'site',
          '#day': 'day',
          '#office': 'office',
        },
        ExpressionAttributeValues: {
          ':token': new Set([token]),
          ':tokenValue': token,
          ':jobs': figures.jobs,
          ':rows': figures.rows,
          ':failedRows': figures.failedRows,
          ':rejectedJobs': figures.rejectedJobs,
          ':site': site,
          ':day': day,
          ':office': office,
        },
      },
    );
    return added !== undefined;
  }

  /** The site's figures per office, summed over the days `from`..`to` (inclusive). Only `site`'s partition is read. */
  async offices(site: string, from: string, to: string): Promise<OfficeUsage> {
    const out = new Map<string, UsageFigures>();
    for (const perDay of (await this.byDay(site, from, to)).values()) {
      for (const [office, f] of perDay) out.set(office, addUsage(out.get(office) ?? NO_USAGE, f));
    }
    return out;
  }

  /**
   * The site's figures per day and office over the days `from`..`to` (inclusive), with one paginated query of its
   * partition: day → office → figures (days without jobs are absent).
   */
  async byDay(site: string, from: string, to: string): Promise<Map<string, Map<string, UsageFigures>>> {
    const out = new Map<string, Map<string, UsageFigures>>();
    const items = queryItems(
      { table: this.table, ddb: this.ddb },
      {
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        // The token sets stay in the table: only the figures are read back.
        ProjectionExpression: '#day, #office, #jobs, #rows, #failedRows, #rejectedJobs',
        ExpressionAttributeNames: {
          '#day': 'day',
          '#office': 'office',
          '#jobs': 'jobs',
          '#rows': 'rows',
          '#failedRows': 'failedRows',
          '#rejectedJobs': 'rejectedJobs',
        },
        ExpressionAttributeValues: {
          ':pk': sitePk(site),
          ':from': `USAGE#${from}#`,
          ':to': `USAGE#${to}#\uffff`,
        },
        // Stryker disable next-line BooleanLiteral: dynalite (the emulator) always reads consistently; only AWS can tell a consistent read from an eventual one
        ConsistentRead: true,
      },
    );
    for await (const item of items) {
      const day = String(item.day);
      const office = String(item.office);
      const offices = out.get(day) ?? new Map<string, UsageFigures>();
      out.set(day, offices);
      offices.set(
        office,
        addUsage(offices.get(office) ?? NO_USAGE, {
          jobs: Number(item.jobs ?? 0),
          rows: Number(item.rows ?? 0),
          failedRows: Number(item.failedRows ?? 0),
          rejectedJobs: Number(item.rejectedJobs ?? 0),
        }),
      );
    }
    return out;
  }
}

/** The usage store of a pipeline: the injected one, else one on the job table. */
export function usageStoreOf(deps: {
  readonly usage?: UsageStore;
  readonly env: { readonly table: string };
}) {
  return deps.usage ?? new UsageStore(deps.env.table);
}

/**
 * Adds a finished job to its site's usage: the day is the job's finish day in the site's time zone, the office the
 * job's. Called right after the job's final state change, with the job that change returned. Safe to repeat.
 */
export async function recordJobUsage(usage: UsageStore, job: Job): Promise<boolean> {
  const log = jobLogger(job.site, job.token);
  const site = loadConfig().sites.find((s) => s.id === job.site);
  if (!site || !job.finishedAt) {
    log.error('usage not recorded: the site is not configured or the job has no finish time', {
      finishedAt: job.finishedAt,
    });
    return false;
  }
  const day = localDay(new Date(job.finishedAt), site.timeZone);
  const office = job.office ?? NO_OFFICE;
  const figures = jobUsage(job);
  // Each attempt is recorded once (a retry's under its own key: its day may be another).
  const attempt = currentAttempt(job);
  const key = attempt > 1 ? `${job.token}#${attempt}` : job.token;
  const added = await usage.add(job.site, day, office, key, figures);
  log.info(added ? 'usage recorded' : 'usage already recorded', { day, office, ...figures });
  return added;
}
