/**
 * Runs before every test file (vitest.config.ts `setupFiles`, so in every tier and in the chaos, fuzz and
 * mutation configs that extend it). Powertools' logger and metrics print nothing: a test asserts what a step
 * returns and stores, not its log lines, and thousands of JSON lines would bury the failures. Processes a test
 * spawns inherit it (the local runtime reads the level with `??=`). `??=` so that a run can ask for the lines
 * (`POWERTOOLS_LOG_LEVEL=DEBUG npx vitest run <file>`); a test that asserts log lines or metrics sets its own
 * (test/unit/lambdas/finalize/handler.test.ts, test/infra/monitoring.test.ts) in `vi.hoisted`, which runs after
 * this file and before the modules it imports.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
