import { describe, expect, it } from 'vitest';
import { workerCount } from '../../../../core/split/worker-count.ts';

const limits = { maxWorkersPerJob: 4, recordsPerWorker: 50_000 };

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
