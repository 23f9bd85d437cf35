/** What a processor sees of one record. */
export interface RowInput {
  readonly n: number;
  readonly line: number;
  readonly fields: readonly string[];
}

export interface RowContext {
  readonly site: string;
  readonly token: string;
  readonly header: readonly string[];
}

/** One file in the result zip. */
export interface RowOutput {
  readonly name: string;
  readonly data: string | Buffer;
}

/**
 * A row processor turns one record into zero or more zip entries. Throwing fails only that record
 * (it is listed in errors.csv). Add your own by implementing this and registering it in `processors/index.ts`.
 */
export interface RowProcessor {
  readonly name: string;
  readonly description: string;
  process(row: RowInput, ctx: RowContext): RowOutput[] | Promise<RowOutput[]>;
}
