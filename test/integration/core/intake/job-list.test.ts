import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../../../core/aws/clients.ts';
import type { JobView } from '../../../../core/intake/operations.ts';
import { encodeCursor } from '../../../../core/intake/job-list.ts';
import { keys, newJobToken } from '../../../../core/jobs/keys.ts';
import { JobStore, jobKey } from '../../../../core/jobs/store.ts';
import { tableDefinition } from '../../../../core/jobs/table.ts';
import { ApiTokens } from '../../../../core/intake/tokens.ts';
import { getStage } from '../../../../config/index.ts';
import { localResourceNames } from '../../../../config/names.ts';
import { ensureResources } from '../../../../local/resources.ts';
import { sitePk } from '../../../../core/shared/dynamo.ts';
import { createStatusHandler } from '../../../../lambdas/status/handler.ts';
import { localContext } from '../../../../lambdas/shared/middleware.ts';
import { createTestJob, testDeps, useTestAws } from '../../../helpers/aws.ts';

const aws = useTestAws();
let jobs: JobStore;
let status: ReturnType<typeof createStatusHandler>;

beforeAll(() => {
  const deps = testDeps(aws);
  jobs = deps.jobs;
  status = createStatusHandler(deps);
});

/** A wide header, as a real file's job record carries it (the heaviest field of a job's item). */
const HEADER = Array.from({ length: 120 }, (_, i) => `column_${i}_with_a_long_descriptive_name`);

/**
 * `count` finished jobs of `site`, one a second from `from` on, written as the pipeline leaves them (header,
 * options, counts), `start` numbering them; their tokens, oldest first.
 */
async function seedJobs(
  site: string,
  count: number,
  from = Date.UTC(2030, 0, 1),
  start = 0,
): Promise<string[]> {
  const tokens: string[] = [];
  const items = Array.from({ length: count }, (_, i) => {
    const token = newJobToken();
    tokens.push(token);
    return {
      ...jobKey(site, token),
      site,
      token,
      state: 'SUCCEEDED',
      processor: 'json',
      upload: 'direct',
      fileName: `file-${start + i}.csv`,
      sourceKey: keys.source(site, token),
      receivedAt: new Date(from + (start + i) * 1000).toISOString(),
      header: HEADER,
      delimiter: ',',
      options: { simulateDelayMs: '5' },
      totalRecords: 10,
      totalChunks: 1,
      chunksDone: 1,
      succeeded: 10,
      failed: 0,
      rejected: 0,
    };
  });
  const ddb = dynamoClient();
  for (let i = 0; i < items.length; i += 25) {
    await ddb.send(
      new BatchWriteCommand({
        RequestItems: { [aws.table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
  }
  return tokens;
}

/** GET /jobs of `site` with the query, through the status function. */
async function getJobs(
  site: string,
  query: Record<string, string> | null = null,
): Promise<{ status: number; body: { jobs: JobView[]; next?: string; error?: { code: string } } }> {
  const event = {
    httpMethod: 'GET',
    path: '/jobs',
    resource: '/jobs',
    pathParameters: null,
    queryStringParameters: query,
    headers: {},
    body: null,
    isBase64Encoded: false,
    requestContext: { authorizer: { site }, httpMethod: 'GET', resourcePath: '/jobs' },
  } as unknown as APIGatewayProxyEvent;
  const r = await status(event, localContext('status'));
  return { status: r.statusCode, body: JSON.parse(r.body) as never };
}

describe('GET /jobs: one page at a time', () => {
  it("pages through all of a site's jobs, newest first, each once, and never another site's", async () => {
    // Prepare
    const mine = await seedJobs('page-a', 7);
    const theirs = await seedJobs('page-b', 3);

    // Act
    const pages: JobView[][] = [];
    let cursor: string | undefined;
    do {
      const r = await getJobs('page-a', { limit: '3', ...(cursor ? { cursor } : {}) });
      expect(r.status).toBe(200);
      pages.push(r.body.jobs);
      cursor = r.body.next;
    } while (cursor && pages.length < 10);

    // Assess
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((j) => j.token)).toEqual([...mine].reverse());
    expect(pages.flat().map((j) => j.token)).not.toEqual(expect.arrayContaining([theirs[0]]));
    expect(pages[0]![0]).toMatchObject({ site: 'page-a', state: 'SUCCEEDED', fileName: 'file-6.csv' });
    expect(pages[0]![0]!.rows).toEqual({ total: 10, succeeded: 10, failed: 0, rejected: 0 });
  });

  it('answers 50 jobs by default and says whether more follow', async () => {
    // Prepare
    await seedJobs('page-c', 51);
    await seedJobs('page-d', 50);

    // Act
    const c = await getJobs('page-c');
    const d = await getJobs('page-d');

    // Assess
    expect(c.body.jobs).toHaveLength(50);
    expect(c.body.next).toEqual(expect.any(String));
    expect(d.body.jobs).toHaveLength(50);
    expect(d.body.next).toBeUndefined();
  });

  it("refuses with 400 a garbage cursor, another site's cursor and a limit out of 1..100", async () => {
    // Prepare
    await seedJobs('page-e', 3);
    await seedJobs('page-f', 3);
    const theirs = (await getJobs('page-f', { limit: '1' })).body.next!;
    const own = (await getJobs('page-e', { limit: '1' })).body.next!;
    const forged = encodeCursor('page-e', { receivedAt: 'yesterday', token: newJobToken() });

    // Act
    const queries: Record<string, string>[] = [
      { cursor: 'not-a-cursor' },
      { cursor: theirs },
      { cursor: `${own}x` },
      { cursor: forged },
      { cursor: Buffer.from('{"s":"page-e"}').toString('base64url') },
      { limit: '0' },
      { limit: '101' },
      { limit: 'ten' },
      { page: '2' },
    ];
    const answers = await Promise.all(queries.map((q) => getJobs('page-e', q)));

    // Assess
    expect(answers.map((a) => [a.status, a.body.error?.code])).toEqual([
      [400, 'INVALID_CURSOR'],
      [400, 'INVALID_CURSOR'],
      [400, 'INVALID_CURSOR'],
      [400, 'INVALID_CURSOR'],
      [400, 'INVALID_CURSOR'],
      [400, 'INVALID_REQUEST'],
      [400, 'INVALID_REQUEST'],
      [400, 'INVALID_REQUEST'],
      [400, 'INVALID_REQUEST'],
    ]);
    expect((await getJobs('page-e', { cursor: own })).body.jobs).toHaveLength(2);
  });

  it('reads the listed fields only, never the header or the options', async () => {
    // Prepare
    await seedJobs('page-g', 2);

    // Act
    const page = await jobs.page('page-g', 10);

    // Assess
    expect(page.jobs).toHaveLength(2);
    for (const j of page.jobs) {
      expect(j).toMatchObject({ site: 'page-g', state: 'SUCCEEDED', succeeded: 10 });
      expect(Object.keys(j)).not.toEqual(expect.arrayContaining(['header']));
      expect(Object.keys(j)).not.toEqual(expect.arrayContaining(['options']));
    }
  });

  it('reads as much for the first page at 2,000 jobs as at 100: independent of the site history', async () => {
    // Prepare
    const site = 'page-h';
    await seedJobs(site, 100);
    // Read units of one call, and its time as the median of five.
    const measure = async () => {
      const runs: { units: number; ms: number; first?: string }[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const p = await jobs.page(site, 50);
        runs.push({ units: p.readUnits, ms: performance.now() - t0, first: p.jobs[0]?.receivedAt });
      }
      runs.sort((a, b) => a.ms - b.ms);
      return runs[2]!;
    };
    const at100 = await measure();
    await seedJobs(site, 1900, Date.UTC(2030, 0, 1), 100);

    // Act
    const at2000 = await measure();
    // What reading the whole partition (the listing before the index) costs at 2,000 jobs, for comparison.
    const whole = await dynamoClient().send(
      new QueryCommand({
        TableName: aws.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': sitePk(site) },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    process.stdout.write(
      `GET /jobs first page (50 jobs): 100 jobs: ${at100.units} RCU, ${at100.ms.toFixed(1)} ms; ` +
        `2,000 jobs: ${at2000.units} RCU, ${at2000.ms.toFixed(1)} ms; ` +
        `the whole partition's first 1 MB at 2,000 jobs: ${whole.ConsumedCapacity?.CapacityUnits} RCU\n`,
    );

    // Assess
    expect(at2000.first).toBe(new Date(Date.UTC(2030, 0, 1) + 1999 * 1000).toISOString());
    expect(at2000.units).toBeGreaterThan(0);
    expect(at2000.units).toBe(at100.units);
    expect(at2000.units * 10).toBeLessThan(whole.ConsumedCapacity!.CapacityUnits!);
  });
});

describe('Local runtime: a table of an older local state', () => {
  it('gets the jobs-by-time index on start, its items kept, so GET /jobs lists the jobs it held', async () => {
    // Prepare: the table as core/jobs/table.ts made it before the index
    const names = { ...localResourceNames('local'), table: 'rowfleet-old-state-jobs' };
    const now = tableDefinition(names.table);
    await dynamoClient().send(
      new CreateTableCommand({
        ...now,
        AttributeDefinitions: now.AttributeDefinitions!.filter((a) => a.AttributeName !== 'receivedAt'),
        GlobalSecondaryIndexes: now.GlobalSecondaryIndexes!.filter((i) => i.IndexName !== 'jobs-by-time'),
      }),
    );
    const old = new JobStore(names.table);
    const job = await createTestJob(old, 'old-state');
    await new ApiTokens(names.table).issue('old-state');

    // Act
    await ensureResources(names, getStage('local').timings, false);
    const listed = await old.list('old-state');

    // Assess
    expect(listed.map((j) => j.token)).toEqual([job.token]);
    expect(await old.get('old-state', job.token)).toEqual(job);
  });
});
