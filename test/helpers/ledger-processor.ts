/**
 * A test processor with side effects (test/integration/scenarios/promises.model.test.ts): each record's "effect" is one
 * line appended to a ledger file outside the pipeline (LEDGER_FILE, read at every call), written before the
 * processor returns, so it survives whatever happens to the worker afterwards. A record whose `mode` cell is
 * `refuse` is refused with a code of its own (nothing happened, no ledger line): failures by value, the same in
 * every attempt. Its results are `rows/<n>.json` holding the fields it saw (the project's zip checker reads them).
 *
 * The pipeline finds it by name through {@link withLedgerProcessor}, a `vi.mock` factory of the processors module
 * (processors/ holds users' processors only; a test processor stays under test/).
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RecordError, type RowProcessor } from '../../core/processors/types.ts';

export const LEDGER_PROCESSOR = 'ledger';
/** The code of a record the processor refuses (its `mode` cell is `refuse`). */
export const REFUSED_CODE = 'LEDGER_REFUSED';
/** The environment variable naming the ledger file. */
export const LEDGER_FILE_ENV = 'ROWFLEET_TEST_LEDGER';

/** One effect, as the ledger keeps it. */
export interface LedgerEntry {
  readonly token: string;
  readonly n: number;
  readonly key: string;
  readonly attempt: number;
  readonly fields: readonly string[];
  readonly at: number;
}

export const ledgerProcessor: RowProcessor = {
  name: LEDGER_PROCESSOR,
  description:
    'rows/<n>.json: appends each record to the ledger file in $ROWFLEET_TEST_LEDGER (a side effect)',
  concurrency: 2,
  sideEffects: true,
  async process(row, ctx) {
    const file = process.env[LEDGER_FILE_ENV];
    if (!file) throw new RecordError('LEDGER_NOT_SET', `${LEDGER_FILE_ENV} is not set; nothing done`);
    if (row.fields[1] === 'refuse')
      throw new RecordError(REFUSED_CODE, `record ${row.n} refused by its value`);
    const entry: LedgerEntry = {
      token: ctx.token,
      n: row.n,
      key: ctx.idempotencyKey,
      attempt: ctx.attempt,
      fields: row.fields,
      at: Date.now(),
    };
    appendFileSync(file, JSON.stringify(entry) + '\n');
    await sleep(2);
    // Aborted after the effect (a kill -9 of the model aborts the records in flight, as does a stop): the effect is
    // done but its outcome is not known, as when the process dies here. Reported IN_DOUBT, never run again.
    if (ctx.signal.aborted) throw new Error(`record ${row.n}: aborted after the effect`);
    return [{ name: `rows/${row.n}.json`, data: JSON.stringify({ n: row.n, fields: row.fields }) }];
  },
};

/** Every effect in the ledger file, in the order they happened. */
export function readLedger(file: string): LedgerEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LedgerEntry);
}

type ProcessorsModule = typeof import('../../core/processors/index.ts');

/**
 * The processors module with the ledger processor added by name:
 * `vi.mock('../../core/processors/index.ts', async (orig) =>
 *    (await import('./ledger-processor.ts')).withLedgerProcessor(await orig()))`.
 */
export function withLedgerProcessor(real: ProcessorsModule): ProcessorsModule {
  return {
    ...real,
    loadProcessor: async (name: string) =>
      name === LEDGER_PROCESSOR ? ledgerProcessor : real.loadProcessor(name),
    processorInfo: async (name: string, stage?: string) =>
      name === LEDGER_PROCESSOR ? ledgerProcessor : real.processorInfo(name, stage),
    processorNames: () => [...real.processorNames(), LEDGER_PROCESSOR],
  };
}
