import { afterEach, describe, expect, it, vi } from 'vitest';
import { workerCount } from '../../../../core/split/worker-count.ts';
import { depsFromEnv } from '../../../../core/deps.ts';

const limits = { maxWorkersPerJob: 4, recordsPerWorker: 50_000 };
const noLauncher = {
  launch: () => Promise.resolve([]),
  stop: () => Promise.resolve(0),
  list: () => Promise.resolve([]),
};

describe('Function: workerCount', () => {
  it('gives a job one worker per recordsPerWorker records, at least one, at most maxWorkersPerJob', () => {
    expect(workerCount(0, limits)).toBe(0);
    expect(workerCount(1, limits)).toBe(1);
    expect(workerCount(50_001, limits)).toBe(2);
    expect(workerCount(1_000_000, limits)).toBe(4);
  });

  it("caps a job that names no number at the stage's defaultWorkersPerJob", () => {
    const local = { ...limits, defaultWorkersPerJob: 2 };
    expect(workerCount(1_000_000, local)).toBe(2);
    expect(workerCount(10, local)).toBe(1);
  });

  it('gives a job the number it asks for, up to maxWorkersPerJob, whatever the default', () => {
    const local = { ...limits, defaultWorkersPerJob: 2 };
    expect(workerCount(10, local, 3)).toBe(3);
    expect(workerCount(1_000_000, local, 9)).toBe(4);
  });
});

describe('Function: depsFromEnv', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('takes the default workers per job from ROWFLEET_DEFAULT_WORKERS_PER_JOB (set by the local runtime)', () => {
    vi.stubEnv('STAGE', 'local');
    vi.stubEnv('BUCKET_NAME', 'b');
    vi.stubEnv('TABLE_NAME', 't');
    vi.stubEnv('FINALIZE_QUEUE_URL', 'http://localhost/finalize');
    vi.stubEnv('DLQ_ARN', 'arn:aws:sqs:ap-northeast-1:000000000000:dlq');
    expect(depsFromEnv(noLauncher).limits.defaultWorkersPerJob).toBeUndefined();
    vi.stubEnv('ROWFLEET_DEFAULT_WORKERS_PER_JOB', '2');
    expect(depsFromEnv(noLauncher).limits.defaultWorkersPerJob).toBe(2);
  });
});
