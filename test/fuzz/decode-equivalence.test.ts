import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { decodeToUtf8, firstInvalidUtf8, type DecodeInfo } from '../../core/source/decode.ts';
import { FileRejectedError } from '../../core/shared/errors.ts';
import { budget, chunked, chunking, fuzzSeconds } from '../helpers/csv-arbitraries.ts';

/** Bytes a text file may hold: ASCII, line feeds, CP932 pairs and single bytes, stray high bytes; few controls. */
const fileByte = fc.oneof(
  { arbitrary: fc.integer({ min: 0x20, max: 0x7e }), weight: 8 },
  { arbitrary: fc.constantFrom(0x0a, 0x0d, 0x09), weight: 2 },
  { arbitrary: fc.integer({ min: 0x80, max: 0xff }), weight: 6 },
  { arbitrary: fc.integer({ min: 0x00, max: 0x1f }), weight: 1 },
);
const cp932Text = fc.string({
  unit: fc.constantFrom('a', ',', '\n', '\r\n', 'ソ', '表', 'ミ', '～', '①', '髙', 'ｱ', '\\', '~', '\u001a'),
  maxLength: 40,
});
const utf8Piece = fc.oneof(
  fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
  fc.string({ unit: fc.constantFrom('a', '\n', 'é', '山', '😀'), maxLength: 8 }).map((s) => Buffer.from(s)),
);

interface Decoded {
  readonly bytes?: Buffer;
  readonly info: DecodeInfo;
  readonly error?: { code: string; line?: number };
}

async function decoded(bytes: Buffer, reads: AsyncIterable<Buffer>): Promise<Decoded> {
  const info: DecodeInfo = {};
  const out: Buffer[] = [];
  try {
    for await (const b of decodeToUtf8(reads, info)) out.push(b);
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    return { info, error: { code: err.code, line: err.line } };
  }
  return { bytes: Buffer.concat(out), info };
}

/** What iconv-lite makes of CP932 bytes: the UTF-8 text, or the line of its first U+FFFD. */
function iconvAnswer(bytes: Buffer): Pick<Decoded, 'bytes' | 'error'> {
  const text = iconv.decode(bytes, 'cp932');
  const bad = text.indexOf('\uFFFD');
  if (bad === -1) return { bytes: Buffer.from(text, 'utf8') };
  return { error: { code: 'UNDECODABLE', line: 1 + (text.slice(0, bad).match(/\n/g)?.length ?? 0) } };
}

/** The first `headLength` bytes in reads of `big` bytes, then the rest in reads of `sizes` (in turn). */
async function* headThenPieces(bytes: Buffer, headLength: number, big: number, sizes: readonly number[]) {
  let i = 0;
  while (i < headLength) {
    const n = Math.min(big, headLength - i);
    yield bytes.subarray(i, i + n);
    i += n;
  }
  yield* chunked(bytes.subarray(i), sizes);
}

const timeout = fuzzSeconds > 0 ? fuzzSeconds * 1000 + 120_000 : 60_000;

async function check(name: string, property: fc.IAsyncProperty<unknown>, params: fc.Parameters<unknown>) {
  const details = await fc.check(property, params);
  process.stdout.write(
    `[fuzz] ${name}: ${details.numRuns} cases, ${details.failed ? 1 : 0} disagreements (seed ${details.seed})\n`,
  );
  if (details.failed)
    throw new Error(`${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
  expect(details.numRuns).toBeGreaterThan(0);
}

describe('Property: the one-pass decoders give what iconv-lite and the UTF-8 rules give', () => {
  it(
    'CP932: the same UTF-8 bytes as iconv-lite, or UNDECODABLE at the line of its first U+FFFD',
    async () => {
      await check(
        'CP932 transcoder',
        fc.asyncProperty(
          cp932Text,
          fc.array(fileByte, { maxLength: 40 }),
          cp932Text,
          chunking,
          async (before, raw, after, sizes) => {
            // Prepare: a CP932 character that is invalid UTF-8 first, so the file is read as CP932
            const bytes = Buffer.concat([
              iconv.encode('ソ' + before, 'cp932'),
              Buffer.from(raw),
              iconv.encode(after, 'cp932'),
            ]);

            // Act
            const got = await decoded(bytes, chunked(bytes, sizes));

            // Assess
            if (got.error?.code === 'NOT_CSV') return;
            expect(got.info.encoding).toBe('cp932');
            expect({ bytes: got.bytes, error: got.error }).toEqual({
              bytes: undefined,
              ...iconvAnswer(bytes),
            });
          },
        ),
        budget(500),
      );
    },
    timeout,
  );

  it(
    'UTF-8: the bytes themselves, or UNDECODABLE at the line of the first invalid byte, however the reads split characters',
    async () => {
      // Prepare: the file is decided UTF-8 on its first 64 KiB after the first non-ASCII byte
      const head = Buffer.from('id,名前\n' + 'a,山田\n'.repeat(8000), 'utf8');
      await check(
        'UTF-8 pass-through',
        fc.asyncProperty(
          fc.array(utf8Piece, { maxLength: 12 }),
          chunking,
          fc.integer({ min: 2000, max: 30_000 }),
          async (pieces, sizes, big) => {
            const bytes = Buffer.concat([head, ...pieces]);
            const bad = firstInvalidUtf8(bytes);
            const invalid = !Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
            const lineAt = (end: number) =>
              1 + (bytes.subarray(0, end).toString('latin1').match(/\n/g)?.length ?? 0);

            // Act
            const got = await decoded(bytes, headThenPieces(bytes, head.length - 8, big, sizes));

            // Assess
            if (got.error?.code === 'NOT_CSV') return;
            expect(got.info.encoding).toBe('utf-8');
            if (!invalid) {
              // Buffer.equals: a deep toEqual of 70 KB takes ~0.1 s
              expect(got.error).toBeUndefined();
              expect(got.bytes?.equals(bytes)).toBe(true);
            } else
              expect(got.error).toEqual({
                code: 'UNDECODABLE',
                line: lineAt(bad === -1 ? bytes.length : bad),
              });
          },
        ),
        budget(200),
      );
    },
    timeout,
  );
});
