import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildDeps, depsFromEnv, fromEnv } from '../../../core/deps.ts';

const noLauncher = {
  launch: () => Promise.resolve([]),
  stop: () => Promise.resolve(0),
  list: () => Promise.resolve([]),
};

const resources = {
  stage: 'local',
  bucket: 'b',
  table: 't',
  finalizeQueueUrl: 'http://localhost/finalize',
  dlqArn: 'arn:aws:sqs:ap-northeast-1:000000000000:dlq',
};

/** The environment the stack (or the local runtime) gives for `resources`. */
const RESOURCE_ENV = {
  STAGE: 'local',
  BUCKET_NAME: 'b',
  TABLE_NAME: 't',
  FINALIZE_QUEUE_URL: 'http://localhost/finalize',
  DLQ_ARN: resources.dlqArn,
};

describe('Function: buildDeps', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('builds from its configuration alone, whatever the environment says', () => {
    // Prepare: an environment that names other resources and other worker numbers
    vi.stubEnv('TABLE_NAME', 'other-table');
    vi.stubEnv('ROWFLEET_MAX_WORKERS', '9');
    vi.stubEnv('ROWFLEET_DEFAULT_WORKERS_PER_JOB', '7');

    // Act
    const deps = buildDeps({ env: resources, maxWorkers: 3, defaultWorkersPerJob: 2 }, noLauncher);
    const plain = buildDeps({ env: resources }, noLauncher);

    // Assess
    expect(deps.env.table).toBe('t');
    expect(deps.budget.maxWorkers).toBe(3);
    expect(deps.limits.defaultWorkersPerJob).toBe(2);
    expect(plain.limits.defaultWorkersPerJob).toBeUndefined();
    expect(plain.notifier).toBeUndefined();
  });
});

describe('Function: fromEnv', () => {
  it('reads the resources and the local runtime overrides from the environment it is given', () => {
    // Act
    const config = fromEnv({
      ...RESOURCE_ENV,
      ROWFLEET_MAX_WORKERS: '4',
      ROWFLEET_DEFAULT_WORKERS_PER_JOB: '0',
      JOBS_TOPIC_ARN: 'arn:aws:sns:ap-northeast-1:000000000000:jobs',
    });

    // Assess: a zero is no override
    expect(config).toEqual({
      env: resources,
      maxWorkers: 4,
      jobsTopicArn: 'arn:aws:sns:ap-northeast-1:000000000000:jobs',
    });
  });
});

describe('Function: depsFromEnv', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('takes the default workers per job from ROWFLEET_DEFAULT_WORKERS_PER_JOB (set by the local runtime)', () => {
    for (const [name, value] of Object.entries(RESOURCE_ENV)) vi.stubEnv(name, value);
    expect(depsFromEnv(noLauncher).limits.defaultWorkersPerJob).toBeUndefined();
    vi.stubEnv('ROWFLEET_DEFAULT_WORKERS_PER_JOB', '2');
    expect(depsFromEnv(noLauncher).limits.defaultWorkersPerJob).toBe(2);
  });
});
