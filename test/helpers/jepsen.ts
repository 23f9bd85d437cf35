/**
 * The total-queue check (as Jepsen runs it on queues): every record a job was given must come out of it
 * exactly once. A finished job's zip is read back and each expected record number n is sorted into
 * present (a result entry `rows/<n>.json` or `reports/<n>.html`, or a line of errors.csv: failed is an
 * outcome, not a loss), missing, or duplicated (two entries, two error lines, or an entry and an error line).
 */
import { parse } from 'csv-parse/sync';
import { parseResultsCsv } from './results-csv.ts';
import { expect } from 'vitest';
import { readZip, type ZipEntryData } from './zip.ts';

/** One line of errors.csv. */
export interface ErrorLine {
  readonly n: number;
  readonly line: number;
  readonly code: string;
  readonly message: string;
  readonly raw: string;
}

export interface ManifestCounts {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
}

export interface RecordCheck {
  /** Records 1..expected were given to the job. */
  readonly expected: number;
  /** Record numbers seen exactly once as a result entry (and not in errors.csv). */
  readonly succeeded: readonly number[];
  /** Record numbers seen exactly once, as a line of errors.csv (and without an entry). */
  readonly failed: readonly number[];
  readonly missing: readonly number[];
  /** Record numbers seen more than once (entries and error lines together). */
  readonly duplicated: readonly { n: number; times: number }[];
  /** Record numbers outside 1..expected, and entries that are no record's result. */
  readonly unexpected: readonly string[];
  /** Entries whose content is not their record's (when a content check was given). */
  readonly corrupted: readonly { n: number; problem: string }[];
  /** errors.csv, as read. */
  readonly errors: readonly ErrorLine[];
  /** The counts manifest.json states (undefined when the zip has no manifest). */
  readonly manifest?: ManifestCounts & { state: string };
  readonly counts: {
    readonly expected: number;
    readonly present: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly missing: number;
    readonly duplicated: number;
    readonly unexpected: number;
    readonly corrupted: number;
  };
}

export interface CheckOptions {
  /** Checks an entry's content: returns a problem, or undefined when the entry holds record n's result. */
  readonly content?: (n: number, data: Buffer) => string | undefined;
}

const RESULT_ENTRY = /^(?:rows\/(\d+)\.json|reports\/(\d+)\.html)$/;
const FIXED = new Set(['manifest.json', 'errors.csv', 'results.csv']);

/** Reads errors.csv (UTF-8 with BOM, columns line,record,code,message,raw). */
export function parseErrorsCsv(data: Buffer | string): ErrorLine[] {
  const rows = parse(data, { bom: true, columns: true, relax_column_count: false }) as Record<
    string,
    string
  >[];
  return rows.map((r) => ({
    n: Number(r.record),
    line: Number(r.line),
    code: r.code ?? '',
    message: r.message ?? '',
    raw: r.raw ?? '',
  }));
}

/** Sorts records 1..expected of a finished job's zip entries into present / missing / duplicated. */
export function checkRecords(
  entries: readonly ZipEntryData[],
  expected: number,
  o: CheckOptions = {},
): RecordCheck {
  const asEntry = new Map<number, number>();
  const asError = new Map<number, number>();
  const unexpected: string[] = [];
  const corrupted: { n: number; problem: string }[] = [];
  let errors: ErrorLine[] = [];
  let manifest: RecordCheck['manifest'];
  let sheet: Buffer | undefined;
  let encoding: 'cp932' | 'utf-8-bom' = 'utf-8-bom';
  const seen = new Set<string>();
  for (const e of entries) {
    if (FIXED.has(e.name)) {
      if (seen.has(e.name)) unexpected.push(`second ${e.name}`);
      seen.add(e.name);
      if (e.name === 'errors.csv') errors = parseErrorsCsv(e.data);
      else if (e.name === 'results.csv') sheet = e.data;
      else {
        const m = JSON.parse(e.data.toString('utf8')) as {
          state: string;
          counts: ManifestCounts;
          encoding?: string;
        };
        manifest = { state: m.state, ...m.counts };
        encoding = m.encoding === 'cp932' ? 'cp932' : 'utf-8-bom';
      }
      continue;
    }
    const m = RESULT_ENTRY.exec(e.name);
    const n = m ? Number(m[1] ?? m[2]) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > expected) {
      unexpected.push(e.name);
      continue;
    }
    asEntry.set(n, (asEntry.get(n) ?? 0) + 1);
    const problem = o.content?.(n, e.data);
    if (problem) corrupted.push({ n, problem });
  }
  for (const line of errors) {
    if (!Number.isInteger(line.n) || line.n < 1 || line.n > expected) {
      unexpected.push(`errors.csv record ${String(line.n)}`);
      continue;
    }
    asError.set(line.n, (asError.get(line.n) ?? 0) + 1);
  }

  // results.csv: every record once, in order, succeeded exactly when errors.csv does not list it.
  if (sheet) {
    const rows = parseResultsCsv(sheet, encoding).rows;
    if (rows.length !== expected) unexpected.push(`results.csv has ${rows.length} rows, not ${expected}`);
    for (const [i, r] of rows.entries()) {
      if (r.record !== i + 1) unexpected.push(`results.csv row ${i + 1} is record ${r.record}`);
      else if ((r.status === 'succeeded') === asError.has(r.record))
        unexpected.push(`results.csv record ${r.record} is ${r.status}`);
    }
  }

  const succeeded: number[] = [];
  const failed: number[] = [];
  const missing: number[] = [];
  const duplicated: { n: number; times: number }[] = [];
  for (let n = 1; n <= expected; n++) {
    const e = asEntry.get(n) ?? 0;
    const f = asError.get(n) ?? 0;
    if (e + f === 0) missing.push(n);
    else if (e + f > 1) duplicated.push({ n, times: e + f });
    else if (e === 1) succeeded.push(n);
    else failed.push(n);
  }
  return {
    expected,
    succeeded,
    failed,
    missing,
    duplicated,
    unexpected,
    corrupted,
    errors,
    manifest,
    counts: {
      expected,
      present: succeeded.length + failed.length,
      succeeded: succeeded.length,
      failed: failed.length,
      missing: missing.length,
      duplicated: duplicated.length,
      unexpected: unexpected.length,
      corrupted: corrupted.length,
    },
  };
}

/** Reads a zip (a buffer or a file) and checks it. */
export async function checkZip(zip: Buffer | string, expected: number, o: CheckOptions = {}) {
  return checkRecords(await readZip(zip), expected, o);
}

const few = (xs: readonly unknown[]) =>
  xs.length > 10
    ? `${JSON.stringify(xs.slice(0, 10)).slice(0, -1)}, … ${xs.length} in all]`
    : JSON.stringify(xs);

/** One line that says what went wrong (and the context, e.g. the seed that replays the run). */
export function describeCheck(c: RecordCheck, context = ''): string {
  return [
    context,
    `${c.counts.present}/${c.expected} present (${c.counts.succeeded} succeeded, ${c.counts.failed} failed)`,
    `missing ${few(c.missing)}`,
    `duplicated ${few(c.duplicated)}`,
    `unexpected ${few(c.unexpected)}`,
    `corrupted ${few(c.corrupted)}`,
    c.manifest ? `manifest ${JSON.stringify(c.manifest)}` : 'no manifest',
  ]
    .filter(Boolean)
    .join('; ');
}

/**
 * Fails unless every expected record is present exactly once, nothing else is in the zip, and the manifest's
 * counts agree with what the zip holds (successes = entries; failed + rejected = lines of errors.csv).
 */
export function expectExactlyOnce(c: RecordCheck, context = ''): void {
  const why = describeCheck(c, context);
  expect(c.missing, why).toEqual([]);
  expect(c.duplicated, why).toEqual([]);
  expect(c.unexpected, why).toEqual([]);
  expect(c.corrupted, why).toEqual([]);
  expect(c.manifest, why).toBeDefined();
  expect(
    {
      total: c.manifest?.total,
      succeeded: c.manifest?.succeeded,
      failedOrRejected: (c.manifest?.failed ?? 0) + (c.manifest?.rejected ?? 0),
    },
    why,
  ).toEqual({ total: c.expected, succeeded: c.counts.succeeded, failedOrRejected: c.counts.failed });
}
