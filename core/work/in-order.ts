/** A chunk's results put back in record order, whatever order its records finish in. */
import type { LocalEntries } from '../messages/zip.ts';
import type { RecordFailure } from '../messages/part.ts';
import type { RowOutput } from '../processors/types.ts';
import { recordToRaw } from '../source/csv.ts';
import { shownNames, shownOutputs } from '../messages/results-row.ts';
import { ChunkEntries, ZIP_ENTRY_NAME } from './chunk-part.ts';
import type { SheetRows } from './sheet-rows.ts';
import type { NameHashKind } from '../jobs/store.ts';

/** What a record's result is. */
export type Done =
  { readonly outputs: readonly RowOutput[] } | { readonly code: string; readonly message: string };

/**
 * A chunk's results in record order, whatever order the records finish in: a record's entries go into the part
 * once every record before it is in. A record finishing in turn (always, for a synchronous processor) goes
 * straight in; one finishing early waits in `held`.
 */
export class InOrder {
  succeeded = 0;
  readonly failures: RecordFailure[] = [];
  private next = 0;
  private held: (Done | undefined)[] | undefined;
  readonly named: ChunkEntries;

  constructor(
    entries: LocalEntries,
    private readonly records: readonly [number, number, string[]][],
    private readonly delimiter: string | undefined,
    /** The chunk's rows of results.csv, when its part carries them: each record's row as it goes in. */
    readonly sheet?: SheetRows,
    /** The job's name hash (Job.nameHash). */
    nameHash?: NameHashKind,
  ) {
    this.named = new ChunkEntries(entries, nameHash);
  }

  /** Record `i` succeeded with `outputs`. */
  ok(i: number, outputs: readonly RowOutput[]): void {
    if (i !== this.next) return this.hold(i, { outputs });
    this.addOk(i, outputs);
    this.advance();
  }

  set(i: number, done: Done): void {
    if (i !== this.next) return this.hold(i, done);
    this.apply(i, done);
    this.advance();
  }

  private hold(i: number, done: Done): void {
    (this.held ??= new Array<Done | undefined>(this.records.length))[i] = done;
  }

  private advance(): void {
    this.next++;
    const held = this.held;
    if (!held) return;
    for (let d = held[this.next]; d !== undefined; d = held[this.next]) {
      held[this.next] = undefined;
      this.apply(this.next, d);
      this.next++;
    }
  }

  private addOk(i: number, outputs: readonly RowOutput[]): void {
    const [n, line, fields] = this.records[i]!;
    const sheet = this.sheet;
    // Its row shows what its entries hold: their names, told from the outputs where they can be (most), else
    // read from the entries (where a side effect's answer may be), which begin at `at`.
    const names = sheet ? shownNames(outputs) : '';
    const at = names === undefined ? this.named.entries.bytes().length : 0;
    const problem = this.named.add(n, line, outputs);
    if (problem) return this.fail(i, { code: ZIP_ENTRY_NAME, message: problem });
    this.succeeded++;
    if (sheet) {
      const output = names ?? shownOutputs(this.named.entries.bytes(), at, outputs.length).shown;
      sheet.add(fields, { n, line, output }, i);
    }
  }

  private apply(i: number, done: Done): void {
    if ('outputs' in done) this.addOk(i, done.outputs);
    else this.fail(i, done);
  }

  private fail(i: number, done: { readonly code: string; readonly message: string }): void {
    const [n, line, fields] = this.records[i]!;
    this.sheet?.add(fields, { n, line, failure: done, output: '' });
    this.failures.push({
      n,
      line,
      code: done.code,
      message: done.message,
      raw: recordToRaw(fields, this.delimiter),
    });
  }
}
