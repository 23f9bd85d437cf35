import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:chaos`: the fault-injection scenarios of test/integration/scenarios/faults.test.ts with more jobs per
 * scenario (CHAOS_ITERATIONS, default 10), larger files, more workers and more faults. Not part of `npm test`.
 * Replay a failure with the seed it prints: `FAULT_SEED=<seed> npm run test:chaos`.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/integration/scenarios/faults.test.ts'],
    testTimeout: 900_000,
    env: { ...base.test?.env, CHAOS: '1' },
  },
});
