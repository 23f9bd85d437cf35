import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  APIGatewayRequestAuthorizerEvent,
} from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuthorizer } from '../../../lambdas/authorizer/handler.ts';
import { createStatusHandler } from '../../../lambdas/status/handler.ts';
import { localContext } from '../../../lambdas/shared/middleware.ts';
import { ApiTokens } from '../../../core/intake/tokens.ts';
import { keys, newJobToken, reportQueueName } from '../../../core/jobs/keys.ts';
import { startDirectJob } from '../../../core/intake/operations.ts';
import { runWorker } from '../../../core/work/worker.ts';
import type { Job } from '../../../core/jobs/store.ts';
import type { PipelineDeps } from '../../../core/deps.ts';
import { createTestJob, TEST_STAGE, testDeps, useTestAws } from '../../helpers/aws.ts';
import { drainFinalizeRequests } from '../../helpers/pipeline-jobs.ts';

/**
 * One site never sees another's data, through the API: the bearer token decides the site (the authorizer), the
 * site travels in the request context (never in the body or the query), and every lookup is in its partition.
 */
const aws = useTestAws();
let deps: PipelineDeps;
let tokens: ApiTokens;

const METHOD_ARN = 'arn:aws:execute-api:ap-northeast-1:123456789012:abcdef1234/prod/GET/jobs/some-token';

function authorizerEvent(headers: Record<string, string> | null): APIGatewayRequestAuthorizerEvent {
  return { type: 'REQUEST', methodArn: METHOD_ARN, headers } as unknown as APIGatewayRequestAuthorizerEvent;
}

/** The authorizer's answer for `headers`, or the error it throws (API Gateway answers 401). */
async function authorize(headers: Record<string, string> | null) {
  const authorizer = createAuthorizer(tokens);
  return authorizer(authorizerEvent(headers), localContext('authorizer')).catch((e: unknown) => e as Error);
}

/** A GET through the status function, with the request context the authorizer's answer gives. */
async function get(path: string, authorizer: Record<string, unknown> | null): Promise<APIGatewayProxyResult> {
  const token = /^\/jobs\/(.+)$/.exec(path)?.[1];
  const event = {
    httpMethod: 'GET',
    path,
    resource: token ? '/jobs/{token}' : path,
    pathParameters: token ? { token } : null,
    queryStringParameters: null,
    headers: {},
    body: null,
    isBase64Encoded: false,
    requestContext: { authorizer, httpMethod: 'GET', resourcePath: token ? '/jobs/{token}' : path },
  } as unknown as APIGatewayProxyEvent;
  return createStatusHandler(deps)(event, localContext('status'));
}

const errorCode = (r: APIGatewayProxyResult) =>
  (JSON.parse(r.body) as { error: { code: string } }).error.code;

let sakaiJob: Job;
let kawasakiJob: Job;

beforeAll(async () => {
  deps = testDeps(aws);
  tokens = new ApiTokens(aws.table);
});

describe('Function: createAuthorizer', () => {
  it("puts the token's own site in the request context, whichever site's token it is", async () => {
    // Prepare
    const sakai = await tokens.issue('sakai');
    const kawasaki = await tokens.issue('kawasaki');

    // Act
    const a = await authorize({ Authorization: `Bearer ${sakai}` });
    const b = await authorize({ authorization: `Bearer ${kawasaki}` });

    // Assess
    expect(a).toMatchObject({ principalId: 'site:sakai', context: { site: 'sakai' } });
    expect(b).toMatchObject({ principalId: 'site:kawasaki', context: { site: 'kawasaki' } });
  });

  it('allows every route of its own API (the answer is cached per token), and nothing else', async () => {
    // Prepare
    const token = await tokens.issue('sakai');

    // Act
    const answer = await authorize({ Authorization: `Bearer ${token}` });

    // Assess
    expect(answer).toMatchObject({
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: 'execute-api:Invoke',
            Effect: 'Allow',
            Resource: 'arn:aws:execute-api:ap-northeast-1:123456789012:abcdef1234/*/*',
          },
        ],
      },
    });
  });

  it('refuses an unknown, malformed or missing token: no site, no access', async () => {
    // Prepare
    const token = await tokens.issue('sakai');

    // Act
    const answers = await Promise.all([
      authorize({ Authorization: `Bearer ${token}x` }),
      authorize({ Authorization: token }),
      authorize({}),
      authorize(null),
    ]);

    // Assess
    for (const a of answers) expect(a).toEqual(new Error('Unauthorized'));
  });
});

describe('Function: callerSite (through the status API)', () => {
  beforeAll(async () => {
    sakaiJob = await createTestJob(deps.jobs, 'sakai');
    kawasakiJob = await createTestJob(deps.jobs, 'kawasaki');
  });

  it("shows a site its own jobs only, the site taken from the authorizer's context", async () => {
    // Prepare
    const sakai = await tokens.issue('sakai');
    const answer = (await authorize({ Authorization: `Bearer ${sakai}` })) as APIGatewayAuthorizerResult;
    const context = answer.context ?? null;

    // Act
    const list = await get('/jobs', context);
    const own = await get(`/jobs/${sakaiJob.token}`, context);

    // Assess
    const listed = (JSON.parse(list.body) as { jobs: { token: string; site: string }[] }).jobs;
    expect(list.statusCode).toBe(200);
    expect(listed.map((j) => j.token)).toContain(sakaiJob.token);
    expect(listed.map((j) => j.token)).not.toContain(kawasakiJob.token);
    expect(new Set(listed.map((j) => j.site))).toEqual(new Set(['sakai']));
    expect(own.statusCode).toBe(200);
    expect(JSON.parse(own.body)).toMatchObject({ token: sakaiJob.token, site: 'sakai', state: 'RECEIVED' });
    expect(JSON.parse(own.body)).not.toHaveProperty('workers');
  });

  it("answers 404 for another site's job token, never its data", async () => {
    // Prepare
    const context = { site: 'sakai' };

    // Act
    const r = await get(`/jobs/${kawasakiJob.token}`, context);

    // Assess
    expect(r.statusCode).toBe(404);
    expect(errorCode(r)).toBe('NOT_FOUND');
    expect(JSON.parse(r.body)).toEqual({
      error: { code: 'NOT_FOUND', message: `No job ${kawasakiJob.token}.` },
    });
    expect(r.body).not.toContain('kawasaki');
  });

  it('answers 404 for a job token that is not one, or that no job has', async () => {
    // Prepare
    const context = { site: 'sakai' };

    // Act
    const malformed = await get('/jobs/not-a-token', context);
    const unknown = await get(`/jobs/${newJobToken()}`, context);

    // Assess
    expect([malformed.statusCode, errorCode(malformed)]).toEqual([404, 'NOT_FOUND']);
    expect(malformed.body).toContain('No job not-a-token.');
    expect([unknown.statusCode, errorCode(unknown)]).toEqual([404, 'NOT_FOUND']);
  });

  it('answers 401 UNAUTHENTICATED when the request context names no site', async () => {
    // Prepare
    const contexts = [null, {}, { site: '' }, { site: 42 }];

    // Act
    const answers = await Promise.all(contexts.map((c) => get('/jobs', c)));

    // Assess
    for (const r of answers) expect([r.statusCode, errorCode(r)]).toEqual([401, 'UNAUTHENTICATED']);
    expect(answers[0]!.body).toContain('A bearer token bound to a site is required.');
  });
});

describe('Function: runWorker (a chunk message of another job on its queue)', () => {
  /** A job of `site` whose one chunk's records say whose they are; its queue and its chunk message. */
  async function jobOf(site: string, words: string) {
    const csv = ['id,name', ...[1, 2, 3].map((n) => `${n},${words} ${n}`)].join('\n') + '\n';
    const view = await startDirectJob(deps, site, Buffer.from(csv, 'utf8'), { processor: 'json' });
    const queueUrl = (await deps.queues.queueUrl(reportQueueName(TEST_STAGE, view.token)))!;
    const [m] = await deps.queues.receive(queueUrl, { max: 1, waitSeconds: 1, visibilitySeconds: 0 });
    return { token: view.token, queueUrl, body: m!.Body! };
  }

  it("never processes another site's or another job's chunk, and counts its own once: its results hold its own records only", async () => {
    // Prepare
    const own = await jobOf('sakai', 'own record');
    const otherSite = await jobOf('kawasaki', 'kawasaki secret');
    const otherJob = await jobOf('sakai', 'other job');
    await deps.queues.sendOne(own.queueUrl, otherSite.body, 'kawasaki', otherSite.token);
    await deps.queues.sendOne(own.queueUrl, otherJob.body, 'sakai', otherJob.token);
    await deps.queues.sendOne(own.queueUrl, own.body, 'sakai', own.token); // its own chunk, delivered twice

    // Act
    const summary = await runWorker(deps, {
      site: 'sakai',
      token: own.token,
      waitSeconds: 0,
      idlePolls: 2,
      visibilitySeconds: 30,
    });
    const part = (await deps.objects.bytes(keys.part('sakai', own.token, 0))).toString('utf8');
    const [ownJob, otherSiteJob, otherSakaiJob] = await Promise.all([
      deps.jobs.get('sakai', own.token),
      deps.jobs.get('kawasaki', otherSite.token),
      deps.jobs.get('sakai', otherJob.token),
    ]);

    // Assess
    expect(summary).toMatchObject({ chunks: 1, records: 3, duplicates: 1 });
    expect(part).toContain('own record 1');
    expect(part).not.toContain('kawasaki secret');
    expect(part).not.toContain('other job');
    expect(ownJob).toMatchObject({ chunksDone: 1, succeeded: 3, failed: 0 });
    expect(otherSiteJob).toMatchObject({ state: 'RUNNING', chunksDone: 0, succeeded: 0 });
    expect(otherSakaiJob).toMatchObject({ state: 'RUNNING', chunksDone: 0, succeeded: 0 });
    expect(await deps.objects.size(keys.part('kawasaki', otherSite.token, 0))).toBeUndefined();
    expect(await deps.objects.size(keys.part('sakai', otherJob.token, 0))).toBeUndefined();
    const finalizeRequests = await drainFinalizeRequests(deps);
    expect(finalizeRequests.filter((r) => r.token === own.token)).toEqual([
      { site: 'sakai', token: own.token, attempt: 1 },
    ]);
    expect(finalizeRequests.filter((r) => r.token !== own.token)).toEqual([]);
  });

  it("shows a running job's workers in its view (and only a waiting or running job's)", async () => {
    // Prepare
    const running = await jobOf('sakai', 'view');

    // Act
    const view = JSON.parse((await get(`/jobs/${running.token}`, { site: 'sakai' })).body) as Record<
      string,
      unknown
    >;

    // Assess
    expect(view).toMatchObject({
      state: 'RUNNING',
      workers: { held: expect.any(Number), target: expect.any(Number) },
    });
  });
});
