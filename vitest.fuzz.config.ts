import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:fuzz`: the equivalence properties of test/fuzz/ (the boundary scanner against the csv-parse
 * reader, the one-pass decoders against iconv-lite and the UTF-8 rules) for FUZZ_SECONDS per property
 * (default 60) instead of the few seconds each gets in `npm test`. Not part of `npm test`. Each property
 * prints its number of cases and its seed; replay a failure with `FUZZ_SEED=<seed> npm run test:fuzz`.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/fuzz/**/*.test.ts'],
    fileParallelism: false,
    env: { ...base.test?.env, FUZZ_SECONDS: process.env.FUZZ_SECONDS ?? '60' },
  },
});
