import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import base from './vitest.config.ts';

/**
 * The tests `npm run test:mutation` (stryker.config.json) runs against the mutants of the guard modules: the
 * fast unit and integration tests that exercise them, in this order (unit tests first: a mutant that a unit
 * test kills costs a second, not a run of the emulators). Not the e2e, browser, infra, fuzz or chaos suites, nor
 * faults.test.ts (the fault scenarios behind `npm run test:chaos`), pipeline.test.ts or mail-isolation.test.ts:
 * those run whole jobs in `beforeAll`, where Stryker cannot tell which test covers a mutant, so every mutant
 * they reach would be run against every test. The promises they check are asserted test by test in the files
 * below.
 */
const FILES = [
  'test/unit/states.test.ts',
  'test/unit/naming.test.ts',
  'test/unit/worker.test.ts',
  'test/unit/job-request.test.ts',
  'test/unit/api-errors.test.ts',
  'test/unit/chunk.test.ts',
  'test/unit/process-chunk.test.ts',
  'test/unit/usage-mail-schedule.test.ts',
  'test/unit/mail-sender.test.ts',
  'test/unit/mail-content.test.ts',
  'test/integration/job-store.test.ts',
  'test/integration/site-isolation.test.ts',
  'test/integration/effects.test.ts',
  'test/integration/usage-mail.test.ts',
  'test/integration/retry.test.ts',
  'test/integration/worker-stop.test.ts',
  'test/integration/nothing-lost.test.ts',
];

const rank = (spec: TestSpecification) => {
  const i = FILES.indexOf(relative(process.cwd(), spec.moduleId));
  return i < 0 ? FILES.length : i;
};

class ListedOrder extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return Promise.resolve([...files].sort((a, b) => rank(a) - rank(b)));
  }
}

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: FILES,
    sequence: { sequencer: ListedOrder },
  },
});
