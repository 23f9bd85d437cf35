import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainRowText } from '../../../../core/work/sheet-rows.ts';
import { sheetRowText } from '../../../../core/messages/results-row.ts';

/** Cell characters: plain ones, and each one the CSV writer quotes or the formula guard prefixes. */
const cellChar = fc.oneof(
  { arbitrary: fc.constantFrom('a', 'Z', '1', ' ', '.', '山', '😀', '\u00a0', '/'), weight: 8 },
  {
    arbitrary: fc.constantFrom('"', ',', ';', '\t', '\r', '\n', '\ufeff', "'", '=', '+', '-', '@'),
    weight: 1,
  },
);
const cell = fc.string({ unit: cellChar, maxLength: 6 });

describe('Function: plainRowText', () => {
  it('writes a succeeded row exactly as sheetRowText does, or leaves it to it', () => {
    let plain = 0;
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 5 })
          .chain((width) =>
            fc.tuple(
              fc.constant(width),
              fc.array(cell, { minLength: Math.max(0, width - 1), maxLength: width + 1 }),
              fc.record({ n: fc.nat(), line: fc.nat(), output: cell }),
              fc.constantFrom(',', ';', '\t', '||'),
            ),
          ),
        ([width, fields, o, delimiter]) => {
          const fast = plainRowText(fields, width, o, delimiter);
          if (fast !== undefined) {
            plain++;
            expect(fast).toBe(sheetRowText(fields, width, o, delimiter));
          }
        },
      ),
      { numRuns: 3000 },
    );
    // The fast path was taken, not only declined.
    expect(plain).toBeGreaterThan(300);
  });

  it('takes a row of plain values, and leaves one the writer quotes or guards', () => {
    const o = { n: 7, line: 8, output: 'rows/7.json' };
    expect(plainRowText(['1', '山田 太郎', ''], 3, o, ',')).toBe(
      '1,山田 太郎,,7,8,succeeded,,,rows/7.json\r\n',
    );
    for (const v of ['a,b', 'say "hi"', 'two\nlines', '=SUM(1)', '-1', "'=1", '\ufeffx', '\tx', '@x', '+1'])
      expect(plainRowText(['1', v, ''], 3, o, ',')).toBeUndefined();
    expect(plainRowText(['1', 'a'], 3, o, ',')).toBeUndefined();
    expect(
      plainRowText(['1', 'a', 'b'], 3, { ...o, failure: { code: 'X', message: 'm' } }, ','),
    ).toBeUndefined();
    expect(plainRowText(['1', 'a', 'b'], 3, { ...o, output: '-x' }, ',')).toBeUndefined();
  });
});
