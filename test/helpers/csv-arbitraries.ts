import fc from 'fast-check';
import iconv from 'iconv-lite';
import { expect } from 'vitest';
import { readRecordBatches, type ReadOptions, type RecordEvent } from '../../core/source/csv.ts';
import { scanRecordBatches, type BoundaryEvent } from '../../core/source/scan.ts';
import { FileRejectedError } from '../../core/shared/errors.ts';

/**
 * Generators of CSV files for the equivalence of the boundary scanner and the csv-parse reader, and the
 * comparison itself. `FUZZ_SECONDS` (set by `npm run test:fuzz`) turns the bounded runs of `npm test` into
 * long ones; `FUZZ_SEED` replays a run.
 */
export const fuzzSeconds = Number(process.env.FUZZ_SECONDS ?? 0);

/** fast-check parameters: a few seconds inside `npm test`, FUZZ_SECONDS per property when fuzzing. */
export function budget(quickRuns: number, quickMs = 3000): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {};
  if (fuzzSeconds > 0)
    return {
      ...seed,
      numRuns: Number.MAX_SAFE_INTEGER,
      plugins: [fc.interruptAfterTimeLimit(fuzzSeconds * 1000)],
    };
  return { ...seed, numRuns: quickRuns, plugins: [fc.interruptAfterTimeLimit(quickMs)] };
}

/** Field text: ASCII, 2-, 3- and 4-byte UTF-8, a BOM character, no-break space, spaces. */
const textChar = fc.constantFrom('a', 'b', 'Z', '1', ' ', '-', 'é', '山', 'ソ', '😀', '\ufeff', '\u00a0');
const text = (maxLength: number) => fc.string({ unit: textChar, maxLength });
const ending = fc.constantFrom('\n', '\r\n', '\r');

/** The units of a quoted field's content: text, quotes (doubled when written), line breaks, delimiters. */
const quotedChar = fc.oneof(
  { arbitrary: textChar, weight: 6 },
  { arbitrary: fc.constantFrom('"', '\n', '\r', '\r\n', ',', '\t', '\0'), weight: 2 },
);

const field = fc.oneof(
  { arbitrary: text(8), weight: 6 },
  {
    arbitrary: fc.string({ unit: quotedChar, maxLength: 10 }).map((s) => `"${s.replace(/"/g, '""')}"`),
    weight: 3,
  },
  { arbitrary: fc.tuple(text(3), text(3)).map(([a, b]) => `${a}\0${b}`), weight: 1 },
);

/** A mutation that breaks a file somewhere: a stray quote, bytes after a closing quote, a cut, a NUL, a huge field. */
const breakage = fc.oneof(
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    s: fc.constantFrom('"', 'x"', '"x', '""x', '"\0', '\0', '\r', '\n', '"\r'),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('huge' as const),
    at: fc.nat(),
    size: fc.integer({ min: 10, max: 300 }),
    quoted: fc.boolean(),
  }),
);

/** A CSV text: leading blank lines, a header, records (right and wrong widths, blank and all-empty ones), breakages. */
export const csvText = fc
  .record({
    leading: fc.array(fc.tuple(fc.constantFrom('', ' ', '\t', ' \t '), ending), { maxLength: 3 }),
    delimiter: fc.constantFrom(',', ',', '\t'),
    width: fc.integer({ min: 1, max: 5 }),
    headerNames: fc.array(fc.constantFrom('id', 'name', '氏名', 'memo', ' ', '', 'a', '"q"', 'x y'), {
      minLength: 5,
      maxLength: 5,
    }),
    uniqueHeader: fc.constantFrom(true, true, true, false),
    rows: fc.array(
      fc.oneof(
        {
          arbitrary: fc.record({
            kind: fc.constant('row' as const),
            fields: fc.array(field, { minLength: 5, maxLength: 5 }),
            widthDelta: fc.constantFrom(0, 0, 0, 0, 0, -1, 1, 2),
          }),
          weight: 10,
        },
        {
          arbitrary: fc.record({
            kind: fc.constant('blank' as const),
            s: fc.constantFrom('', ' ', '\t', '  '),
          }),
          weight: 1,
        },
        { arbitrary: fc.record({ kind: fc.constant('empty' as const), quoted: fc.boolean() }), weight: 1 },
      ),
      { maxLength: 30 },
    ),
    endings: fc.array(ending, { minLength: 1, maxLength: 4 }),
    lastEnding: fc.boolean(),
    breakages: fc.oneof(
      { arbitrary: fc.constant([]), weight: 2 },
      { arbitrary: fc.array(breakage, { minLength: 1, maxLength: 2 }), weight: 1 },
    ),
    bomInside: fc.boolean(),
  })
  .map((g) => {
    const d = g.delimiter;
    const names = g.uniqueHeader
      ? Array.from({ length: g.width }, (_, i) => `c${i}`)
      : g.headerNames.slice(0, g.width);
    const lines: string[] = [names.join(d)];
    for (const r of g.rows) {
      if (r.kind === 'blank') lines.push(r.s);
      else if (r.kind === 'empty')
        lines.push(Array.from({ length: g.width }, () => (r.quoted ? '""' : '')).join(d));
      else {
        const n = Math.max(1, g.width + r.widthDelta);
        const fields = Array.from({ length: n }, (_, i) => r.fields[i % r.fields.length]!);
        lines.push(fields.join(d));
      }
    }
    let s = g.leading.map(([w, e]) => w + e).join('') + (g.bomInside ? '\ufeff' : '');
    lines.forEach((l, i) => {
      s += l;
      if (i < lines.length - 1 || g.lastEnding) s += g.endings[i % g.endings.length]!;
    });
    for (const b of g.breakages) {
      const at = s.length === 0 ? 0 : b.at % (s.length + 1);
      // Never cut a surrogate pair in two (the text stays valid UTF-8).
      const pos = at > 0 && /[\udc00-\udfff]/.test(s[at] ?? '') ? at - 1 : at;
      if (b.kind === 'cut') s = s.slice(0, pos);
      else if (b.kind === 'insert') s = s.slice(0, pos) + b.s + s.slice(pos);
      else {
        const big = '山a'.repeat(b.size);
        s = s.slice(0, pos) + (b.quoted ? `"${big}"` : big) + s.slice(pos);
      }
    }
    return s;
  });

/** Any short sequence of the characters that matter to a CSV reader, in any order. */
export const junkText = fc.string({
  unit: fc.constantFrom(',', '"', '"', '\n', '\r', '\t', ' ', 'a', 'é', '山', '😀', '\0', '\ufeff'),
  maxLength: 60,
});

/**
 * Record size limits: fixed ones (small ones make RECORD_TOO_LARGE frequent; 1 MiB is the default), or
 * the byte length of one of the file's lines plus a few bytes either way, where an off-by-one would show.
 */
export const maxRecordBytes = fc.oneof(
  fc.constantFrom(1, 4, 8, 16, 33, 64, 200).map((n) => () => n),
  fc.constant(() => 1 << 20),
  fc
    .record({ line: fc.nat(), delta: fc.integer({ min: -4, max: 4 }) })
    .map(({ line, delta }) => (text: string) => {
      const lines = text.split(/\r\n|\n|\r/);
      return Math.max(1, Buffer.byteLength(lines[line % lines.length]!) + delta);
    }),
);

/** How to cut the bytes into reads: piece sizes, used in turn. */
export const chunking = fc.oneof(
  fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 6 }),
  fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 3 }),
);

export async function* chunked(bytes: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  let i = 0;
  let k = 0;
  while (i < bytes.length) {
    const size = sizes[k++ % sizes.length]!;
    yield bytes.subarray(i, i + size);
    i += size;
  }
}

/** How a file may be encoded on upload (CP932 only where every character has a CP932 form). */
export type Encoding = 'utf-8' | 'utf-8-bom' | 'utf-16le' | 'utf-16be' | 'cp932';
export const encoding = fc.constantFrom<Encoding>('utf-8', 'utf-8-bom', 'utf-16le', 'utf-16be', 'cp932');

export function encode(text: string, enc: Encoding): Buffer {
  switch (enc) {
    case 'utf-8':
      return Buffer.from(text, 'utf8');
    case 'utf-8-bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
    case 'utf-16le':
      return Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(text, 'utf-16le')]);
    case 'utf-16be':
      return Buffer.concat([Buffer.from([0xfe, 0xff]), iconv.encode(text, 'utf-16be')]);
    case 'cp932': {
      const b = iconv.encode(text, 'cp932');
      return iconv.decode(b, 'cp932') === text ? b : Buffer.from(text, 'utf8');
    }
  }
}

export interface Outcome {
  readonly events: unknown[];
  readonly error?: { code: string; line?: number; message: string };
}

/** Every event a reader yields (record fields left out: the scanner has none) and the error it ends with. */
export async function outcome(batches: AsyncIterable<(RecordEvent | BoundaryEvent)[]>): Promise<Outcome> {
  const events: unknown[] = [];
  try {
    for await (const batch of batches)
      for (const e of batch) events.push(e.kind === 'record' ? { ...e, fields: undefined } : e);
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    return { events, error: { code: err.code, line: err.line, message: err.message } };
  }
  return { events };
}

export const reference = (input: AsyncIterable<Buffer>, opts: ReadOptions) =>
  outcome(readRecordBatches(input, opts));
export const scanned = (input: AsyncIterable<Buffer>, opts: ReadOptions) =>
  outcome(scanRecordBatches(input, opts));

/**
 * The scanner agrees with the reference: the same events (number, kind, line, end line, byte offset, header,
 * code, message and raw text of rejected records — the message names the field count) and the same error
 * (code, line, message). Before an error, each reader drops the events of the chunk it fails in, so there
 * only the events both gave are compared.
 */
export function expectSame(ref: Outcome, scan: Outcome): void {
  expect(scan.error).toEqual(ref.error);
  if (ref.error) {
    const k = Math.min(ref.events.length, scan.events.length);
    expect(scan.events.slice(0, k)).toEqual(ref.events.slice(0, k));
  } else expect(scan.events).toEqual(ref.events);
}
