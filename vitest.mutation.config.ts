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
  'test/unit/core/jobs/states.test.ts',
  'test/unit/core/jobs/keys.test.ts',
  'test/unit/core/work/worker.test.ts',
  'test/unit/core/intake/request.test.ts',
  'test/unit/lambdas/shared/http.test.ts',
  'test/unit/core/messages/chunk.test.ts',
  'test/unit/core/work/process-chunk.test.ts',
  'test/unit/lambdas/usage-mail/handler.test.ts',
  'test/unit/core/usage/ses-sender.test.ts',
  'test/unit/core/usage/mail-content.test.ts',
  'test/integration/core/jobs/store.test.ts',
  'test/integration/scenarios/site-isolation.test.ts',
  'test/integration/core/effects/claims.test.ts',
  'test/integration/core/usage/mail.test.ts',
  'test/integration/core/intake/rerun-failed.test.ts',
  'test/integration/core/work/worker.test.ts',
  'test/integration/scenarios/nothing-lost.test.ts',
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
