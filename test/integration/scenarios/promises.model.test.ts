/**
 * The promises where features meet (issue 19), model-based: random sequences of uploads (UTF-8 and CP932, cells
 * with CR / LF / CRLF / quotes / delimiters), cancels at a random moment, kills of a worker, failure-rate stops
 * and retries (sometimes two at once), with a processor whose effects go to a ledger outside the pipeline; after
 * each sequence every record's effect happened at most once, every record ended in exactly one outcome, values
 * are byte-exact and counts add up (test/helpers/promises-model.ts). A few sequences here (about 10 s each
 * test); minutes of them in `npm run test:fuzz` (test/fuzz/promises.model.test.ts). The seed is printed; a
 * failure names the seed and path that replay it (`FUZZ_SEED=… FUZZ_PATH=…`; MODEL_VERBOSE=1 prints every
 * sequence).
 */
import { describe, expect, it, vi } from 'vitest';
import { useTestAws } from '../../helpers/aws.ts';
import { runModel, useModel } from '../../helpers/promises-model.ts';

vi.mock('../../../core/processors/index.ts', async (original) =>
  (await import('../../helpers/ledger-processor.ts')).withLedgerProcessor(await original()),
);

const model = useModel(useTestAws());

describe('Model: the promises across uploads, cancels, kills, failure-rate stops and retries', () => {
  it('holds them without retries: effects at most once, one outcome per record, values byte-exact, counts add up', async () => {
    const r = await runModel(model.fleet, model.api.url, model.dir, {
      label: 'no retries',
      retries: false,
      maxRecords: 50,
      maxCommands: 5,
      numRuns: 100,
      ms: 7_000,
      settleMs: 30_000,
    });
    expect(r.failure).toBeUndefined();
    expect(r.runs).toBeGreaterThan(0);
  }, 120_000);

  it('holds them with retries too (a retry, or two at once, of a job a cancel, a kill or a stop cut short), and CSVs sent as other content types', async () => {
    const r = await runModel(model.fleet, model.api.url, model.dir, {
      label: 'with retries',
      retries: true,
      contentTypes: true,
      maxRecords: 50,
      maxCommands: 5,
      numRuns: 100,
      ms: 7_000,
      settleMs: 30_000,
    });
    expect(r.failure).toBeUndefined();
    expect(r.runs).toBeGreaterThan(0);
  }, 120_000);
});
