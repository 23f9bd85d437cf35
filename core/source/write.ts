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

/** Per one-character delimiter: what makes a cell quoted (csv-stringify's rule with {@link ALSO_QUOTED}). */
const quotedBy = new Map<string, RegExp>();

function quoteRule(delimiter: string): RegExp {
  let r = quotedBy.get(delimiter);
  if (!r) {
    const d = delimiter.replace(/[\\\]^-]/g, '\\$&');
    r = new RegExp(`["\\r\\n${d}]|^\\uFEFF`);
    quotedBy.set(delimiter, r);
  }
  return r;
}

/**
 * One record as csv-stringify writes it with {@link options} and a one-character delimiter (the readers' dialect
 * has no other), without its record delimiter: a cell holding a quote, the delimiter, a CR or an LF, or starting
 * with U+FEFF, is quoted, its quotes doubled. Written here because results.csv is a million rows: csv-stringify's
 * per-cell options and casts were most of the finalize's time (test/unit/csv-write.test.ts holds the two alike).
 */
function csvLine(cells: readonly string[], delimiter: string, guard: boolean | undefined): string {
  const rule = quoteRule(delimiter);
  let line = '';
  for (let i = 0; i < cells.length; i++) {
    let v = cells[i]!;
    if (guard) v = neutraliseCell(v);
    if (i > 0) line += delimiter;
    if (v === '' || !rule.test(v)) line += v;
    else line += `"${v.includes('"') ? v.replaceAll('"', '""') : v}"`;
  }
  return line;
}

/** Records as CSV text, each ended by CRLF. */
export function csvText(records: readonly (readonly string[])[], o: CsvWriteOptions = {}): string {
  const delimiter = o.delimiter ?? ',';
  if (delimiter.length === 1) {
    let text = '';
    for (const r of records) text += csvLine(r, delimiter, o.guard) + '\r\n';
    return text;
  }
  const rows = o.guard ? records.map((r) => r.map(neutraliseCell)) : records;
  return stringify(rows as string[][], options(delimiter, '\r\n'));
}

/** {@link csvText} of one record (CRLF-ended), for writers that build their text a record at a time. */
export function csvTextLine(cells: readonly string[], o: CsvWriteOptions = {}): string {
  return csvText([cells], o);
}

/** One record as CSV text, without a record delimiter (the `raw` of an error line). */
export function csvRecord(fields: readonly string[], delimiter = ','): string {
  return stringify([fields as string[]], options(delimiter, ''));
}
