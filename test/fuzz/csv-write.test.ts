import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { detectDelimiter, readRecordBatches } from '../../core/source/csv.ts';
import { decodeToUtf8 } from '../../core/source/decode.ts';
import { readRange, scanRecordBatches } from '../../core/source/scan.ts';
import { csvText, neutraliseCell } from '../../core/source/write.ts';
import { budget, chunked, chunking, fuzzSeconds } from '../helpers/csv-arbitraries.ts';

/**
 * The CSV writer (core/source/write.ts) against the project's own readers: what it writes, encoded as a user
 * would save it (UTF-8, UTF-8 with a BOM, CP932) and decoded as an upload is (decode.ts), reads back as the same
 * header and records with the csv-parse reader (csv.ts), the split's boundary scanner and the workers' range
 * reader (scan.ts). The records are those a reader can give: a valid header (names neither blank nor twice),
 * no NUL, not every cell empty.
 */

/** What a CSV reader cares about, in every mix: quotes, delimiters, lone and paired CR/LF, a BOM character. */
const special = fc.constantFrom('"', ',', '\t', '\r', '\n', '\r\n', '\n\r', '\r\r', ' ', '\ufeff', '=', '-');
/** Any code point but NUL and the C0 controls (a file full of those is refused as binary before any CSV rule). */
const anyChar = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 1 })
  .map((c) => (c.codePointAt(0)! < 0x20 && !'\t\r\n'.includes(c) ? 'x' : c));
const japanese = fc.constantFrom('山', '田', 'ソ', '表', 'ｱ', 'ﾃｽﾄ', '①', '髙', '〜', '－', 'a', 'Z', '1');

const cell = (unit: fc.Arbitrary<string>) => fc.array(unit, { maxLength: 8 }).map((units) => units.join(''));
const unit = fc.oneof({ arbitrary: special, weight: 3 }, { arbitrary: anyChar, weight: 2 }, japanese);

type Encoding = 'utf-8' | 'utf-8-bom' | 'cp932';

/** Only characters CP932 has (each one round-trips through iconv-lite's CP932). */
const inCp932 = (s: string) =>
  [...s].filter((c) => iconv.decode(iconv.encode(c, 'cp932'), 'cp932') === c).join('');

/** A header and records a reader can give, in an encoding; CP932 files only with CP932's characters. */
const table = fc
  .record({
    width: fc.integer({ min: 1, max: 4 }),
    names: fc.array(cell(unit), { minLength: 4, maxLength: 4 }),
    rows: fc.array(fc.array(cell(unit), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 12 }),
    encoding: fc.constantFrom<Encoding>('utf-8', 'utf-8-bom', 'cp932'),
  })
  .map(({ width, names, rows, encoding }) => {
    const fit = encoding === 'cp932' ? inCp932 : (s: string) => s;
    // Header names are unique and not blank (validateHeader).
    const header = names.slice(0, width).map((s, i) => `${fit(s)}h${i}`);
    const records = rows.map((r) => r.slice(0, width).map(fit)).filter((r) => r.some((c) => c !== ''));
    return { header, records, encoding };
  })
  // The delimiter is told from the first physical line (a tab and no comma: tab-separated), so a header whose
  // first line is that is never one of a comma-separated file the split accepted.
  .filter((t) => t.records.length > 0 && detectDelimiter(csvText([t.header])) === ',');

function encode(text: string, enc: Encoding): Buffer {
  if (enc === 'cp932') return iconv.encode(text, 'cp932');
  const utf8 = Buffer.from(text, 'utf8');
  return enc === 'utf-8' ? utf8 : Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8]);
}

const OPTS = { maxRecordBytes: 1 << 20 };

async function collect<T>(batches: AsyncIterable<T[]>): Promise<T[]> {
  const all: T[] = [];
  for await (const b of batches) all.push(...b);
  return all;
}

const timeout = fuzzSeconds > 0 ? fuzzSeconds * 1000 + 120_000 : 60_000;

describe('Property: the CSV writer writes what the readers read', () => {
  it(
    'gives back the same header and records through decode, csv-parse, the split scanner and the range reader',
    async () => {
      const details = await fc.check(
        fc.asyncProperty(table, chunking, async ({ header, records, encoding }, sizes) => {
          // Prepare
          const bytes = encode(csvText([header, ...records]), encoding);
          // A CP932 file that is valid UTF-8 as well is read as UTF-8 (decode.ts's rule, not the writer's).
          fc.pre(encoding !== 'cp932' || !isUtf8(bytes) || bytes.every((b) => b < 0x80));

          // Act
          const utf8 = Buffer.concat(await collect(toBatches(decodeToUtf8(chunked(bytes, sizes)))));
          const parsed = await collect(readRecordBatches(chunked(utf8, sizes), OPTS));
          const scanned = await collect(
            scanRecordBatches(chunked(utf8, sizes), { ...OPTS, withFields: true }),
          );
          const head = parsed[0]!;
          const ranged = readRange(utf8.subarray(head.end), {
            header,
            delimiter: ',',
            n: 1,
            line: head.endLine + 1,
            maxRecordBytes: OPTS.maxRecordBytes,
          });

          // Assess
          expect(head).toMatchObject({ kind: 'header', header, delimiter: ',' });
          const want = records.map((fields, i) => ({ kind: 'record', n: i + 1, fields }));
          const shape = (e: { kind: string; n?: number; fields?: string[] }) => ({
            kind: e.kind,
            n: e.n,
            fields: e.fields,
          });
          expect(parsed.slice(1).map(shape)).toEqual(want);
          expect(scanned.slice(1).map(shape)).toEqual(want);
          expect(ranged.map(shape)).toEqual(want);
          expect(scanned).toEqual(parsed);
        }),
        budget(300),
      );
      process.stdout.write(`[fuzz] CSV writer round trip: ${details.numRuns} cases (seed ${details.seed})\n`);
      if (details.failed)
        throw new Error(`${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
      expect(details.numRuns).toBeGreaterThan(0);
    },
    timeout,
  );
});

describe('Property: the CSV writer writes what csv-stringify wrote', () => {
  it(
    "gives the same text for any cells, one-character delimiter and guard as csv-stringify with the readers' options",
    () => {
      const details = fc.check(
        fc.property(
          fc.array(fc.array(cell(unit), { maxLength: 5 }), { maxLength: 6 }),
          fc.constantFrom(',', ';', '\t', '|', '"', '-', ']', '\\', '^', ' '),
          fc.boolean(),
          (records, delimiter, guard) => {
            // The writer csvText had before (csv-stringify), and the options it was given.
            const rows = guard ? records.map((r) => r.map(neutraliseCell)) : records;
            const want = stringify(rows, {
              delimiter,
              record_delimiter: '\r\n',
              quoted_match: /[\r\n]|^\uFEFF/,
            });
            expect(csvText(records, { delimiter, guard })).toBe(want);
          },
        ),
        budget(2000),
      );
      process.stdout.write(
        `[fuzz] CSV writer vs csv-stringify: ${details.numRuns} cases (seed ${details.seed})\n`,
      );
      if (details.failed)
        throw new Error(`${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
      expect(details.numRuns).toBeGreaterThan(0);
    },
    timeout,
  );
});

async function* toBatches(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer[]> {
  for await (const b of source) yield [b];
}
