/**
 * The console's wire types (web/src/types.ts) against what core answers: checked by the type-check of the tests
 * (`npm run typecheck`), so a field core renames or retypes breaks the build, not the console at run time.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { JobView as CoreJobView } from '../../../../core/intake/api.ts';
import type { CheckAnswer } from '../../../../core/intake/check.ts';
import type { ErrorPage as CoreErrorPage } from '../../../../core/intake/error-rows.ts';
import type { JobsPage as CoreJobsPage } from '../../../../core/intake/job-list.ts';
import type { UsageAnswer } from '../../../../core/intake/usage-view.ts';
import type { CheckResult, ErrorPage, JobView, JobsPage, UsageResponse } from '../../../../web/src/types.ts';

describe('Wire types: the console reads what core answers', () => {
  it('reads a job view, a page of jobs, a page of errors and a usage answer as core builds them', () => {
    expectTypeOf<CoreJobView>().toExtend<JobView>();
    expectTypeOf<CoreErrorPage>().toExtend<ErrorPage>();
    expectTypeOf<CoreJobsPage>().toExtend<JobsPage>();
    expectTypeOf<UsageAnswer>().toExtend<UsageResponse>();
    expectTypeOf<CheckAnswer>().toExtend<CheckResult>();
  });
});
