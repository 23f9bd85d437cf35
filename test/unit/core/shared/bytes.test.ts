import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withRoom, writeUint, writeUtf8 } from '../../../../core/shared/bytes.ts';

/** `write(b, v, at)` and `expected(v)` write the same bytes at the same place and answer their length. */
function sameAs(write: (b: Buffer, at: number) => number, expected: Buffer): void {
  const at = 3;
  const b = Buffer.alloc(at + expected.length + 8, 0xaa);
  const n = write(b, at);
  expect(n).toBe(expected.length);
  expect(b.subarray(at, at + n)).toEqual(expected);
  // Nothing written before `at` or after the text.
  expect([...b.subarray(0, at), ...b.subarray(at + n)].every((x) => x === 0xaa)).toBe(true);
}

describe('Function: writeUtf8', () => {
  it("writes what Buffer's write writes, short or long, ASCII or not", () => {
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom('a', '/', '.', '0', '~', '\u007f'), maxLength: 80 }),
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.string({ unit: fc.constantFrom('a', '山', '\u0080', '\ud800', '😀'), maxLength: 80 }),
    );
    fc.assert(
      fc.property(text, (s) => sameAs((b, at) => writeUtf8(b, s, at), Buffer.from(s, 'utf8'))),
      { numRuns: 2000 },
    );
  });
});

describe('Function: writeUint', () => {
  it('writes String(v) for any number, digit by digit for a safe integer ≥ 0', () => {
    const v = fc.oneof(
      fc.nat(),
      fc.maxSafeNat(),
      fc.constantFrom(0, 9, 10, 99, 100, Number.MAX_SAFE_INTEGER, 2 ** 53, -1, 1.5, NaN, Infinity, 1e21),
      fc.double(),
    );
    fc.assert(
      fc.property(v, (x) => sameAs((b, at) => writeUint(b, x, at), Buffer.from(String(x), 'latin1'))),
      { numRuns: 2000 },
    );
  });
});

describe('Function: withRoom', () => {
  it('answers the same buffer when it has the room, else a larger one holding its first bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.nat({ max: 64 }),
        fc.nat({ max: 200 }),
        fc.nat({ max: 300 }),
        (bytes, cut, n, min) => {
          // Prepare
          const b = Buffer.from(bytes);
          const used = Math.min(cut, b.length);

          // Act
          const r = withRoom(b, used, n, min);

          // Assess
          expect(r.length - used).toBeGreaterThanOrEqual(n);
          expect(r.subarray(0, used).equals(b.subarray(0, used))).toBe(true);
          if (used + n <= b.length) expect(r).toBe(b);
          else expect(r.length).toBeGreaterThanOrEqual(Math.max(2 * b.length, min));
        },
      ),
    );
  });
});
