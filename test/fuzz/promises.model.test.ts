/**
 * The model-based test of the promises (test/integration/scenarios/promises.model.test.ts) for FUZZ_SECONDS per property in
 * `npm run test:fuzz`: longer sequences (up to 10 commands), bigger files. Skipped in `npm test` (its quick
 * variant runs there). Replay a failure with the `FUZZ_SEED=… FUZZ_PATH=…` it prints.
 */
import { describe, expect, it, vi } from 'vitest';
import { useTestAws } from '../helpers/aws.ts';
import { runModel, useModel } from '../helpers/promises-model.ts';
import { fuzzSeconds } from '../helpers/csv-arbitraries.ts';

vi.mock('../../core/processors/index.ts', async (original) =>
  (await import('../helpers/ledger-processor.ts')).withLedgerProcessor(await original()),
);

const model = useModel(useTestAws());
const timeout = fuzzSeconds * 1000 + 180_000;

describe.skipIf(fuzzSeconds === 0)(
  'Model (fuzz): the promises across features, for FUZZ_SECONDS each',
  () => {
    for (const retries of [false, true]) {
      it(
        `holds them ${retries ? 'with' : 'without'} retries`,
        async () => {
          const r = await runModel(model.fleet, model.api.url, model.dir, {
            label: `fuzz, ${retries ? 'with' : 'no'} retries`,
            retries,
            contentTypes: retries,
            maxRecords: 200,
            maxCommands: 10,
            numRuns: Number.MAX_SAFE_INTEGER,
            ms: fuzzSeconds * 1000,
            settleMs: 60_000,
          });
          process.stderr.write(`promises model: ${r.runs} sequences, seed ${r.seed}\n`);
          expect(r.failure).toBeUndefined();
        },
        timeout,
      );
    }
  },
);
