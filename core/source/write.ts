import { stringify } from 'csv-stringify/sync';

/**
 * The one CSV writer of everything Rowfleet writes (errors.csv, the retry file, the raw record of an error
 * line): the readers' dialect (csv.ts, scan.ts) in reverse. A cell holding a quote (doubled), the delimiter, a
 * CR or an LF — alone or as CRLF — is quoted, so a cell with Excel's Alt+Enter line break (a lone LF) or a lone
 * CR stays one cell; so is a first cell starting with U+FEFF (it would be read as a BOM). Records end with CRLF,
 * as Excel writes them. test/fuzz/csv-write.test.ts reads what it writes back with both readers, in UTF-8 and
 * CP932.
 */
export interface CsvWriteOptions {
  /** @default ',' */
  readonly delimiter?: string;
  /** Spreadsheet formula guard ({@link neutraliseCell}) on every cell: for files meant to be opened in Excel. */
  readonly guard?: boolean;
}

/** Cells csv-stringify would leave bare that must be quoted all the same (it quotes only its own record delimiter). */
const ALSO_QUOTED = /[\r\n]|^\uFEFF/;

const options = (delimiter: string, recordDelimiter: string) => ({
  delimiter,
  record_delimiter: recordDelimiter,
  quoted_match: ALSO_QUOTED,
});

/**
 * OWASP CSV injection: a cell that a spreadsheet would read as a formula gets a leading apostrophe. A cell that
 * already starts with apostrophes before such a character gets one more, so the guard can be taken off again
 * exactly ({@link unguardCell}): a resubmitted results.csv (core/intake/resubmit.ts) gives back the values as
 * they were, `'=1` included.
 */
export function neutraliseCell(value: string): string {
  return GUARDED.test(value) ? `'${value}` : value;
}

/** Cells the guard prefixes: a formula's first character, after any apostrophes. */
const GUARDED = /^'*[=+\-@\t\r]/;
/** Cells the guard wrote: one or more apostrophes before a formula's first character. */
const WAS_GUARDED = /^'+[=+\-@\t\r]/;

/**
 * The inverse of {@link neutraliseCell}: `unguardCell(neutraliseCell(v)) === v` for every `v`. A cell the guard
 * did not write (no apostrophe before a formula's first character) is left as it is, so a value a user typed in
 * Excel comes back unchanged.
 */
export function unguardCell(value: string): string {
  return WAS_GUARDED.test(value) ? value.slice(1) : value;
}

/** Records as CSV text, each ended by CRLF. */
export function csvText(records: readonly (readonly string[])[], o: CsvWriteOptions = {}): string {
  const rows = o.guard ? records.map((r) => r.map(neutraliseCell)) : records;
  return stringify(rows as string[][], options(o.delimiter ?? ',', '\r\n'));
}

/** One record as CSV text, without a record delimiter (the `raw` of an error line). */
export function csvRecord(fields: readonly string[], delimiter = ','): string {
  return stringify([fields as string[]], options(delimiter, ''));
}
