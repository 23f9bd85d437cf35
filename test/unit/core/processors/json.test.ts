import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonText } from '../../../../core/processors/json.ts';

/** Characters JSON escapes (quote, backslash, controls, lone surrogates) and ones it leaves (paired, U+2028, DEL). */
const unit = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      '"',
      '\\',
      '\n',
      '\u0000',
      '\u001f',
      '\ud800',
      '\udfff',
      '😀',
      '\u2028',
      '\u007f',
      '山',
    ),
    weight: 1,
  },
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 1 },
  { arbitrary: fc.constantFrom('a', '1', ' ', '-', 'é'), weight: 4 },
);

describe('Function: jsonText — one value', () => {
  it('writes a value as JSON.stringify does, surrogates and controls included', () => {
    const one = (v: string) => jsonText(['v'], [v]).slice('{"v":'.length, -1);
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 12 }), (v) => {
        expect(one(v)).toBe(JSON.stringify(v));
      }),
      { numRuns: 5000 },
    );
    // Lone surrogates, unpaired in either order
    for (const v of ['\ud800', 'a\udc00', '\udc00\ud800', '\ud83d\ude00'])
      expect(one(v)).toBe(JSON.stringify(v));
  });
});

describe('Function: jsonText', () => {
  it("is the record's keys and values as JSON.stringify writes them, in header order, a missing value empty", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ unit, maxLength: 4 }), { maxLength: 4 }),
        fc.array(fc.string({ unit, maxLength: 8 }), { maxLength: 5 }),
        (header, fields) => {
          const expected = `{${header.map((h, i) => `${JSON.stringify(h)}:${JSON.stringify(fields[i] ?? '')}`).join(',')}}`;
          expect(jsonText(header, fields)).toBe(expected);
        },
      ),
      { numRuns: 3000 },
    );
    expect(jsonText(['__proto__', 'a'], ['x'])).toBe('{"__proto__":"x","a":""}');
  });
});
