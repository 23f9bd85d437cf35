import fc from 'fast-check';
import murmur from 'murmurhash3js';
import { describe, expect, it } from 'vitest';
import { murmur3x86_128of96 } from '../../../../core/shared/murmur3.ts';

/** The first 96 bits of the hash, as 24 hex digits (the reference's words h1, h2, h3 in order). */
function ours(s: string): string {
  const out = new Uint32Array(3);
  murmur3x86_128of96(s, out);
  return [...out].map((w) => w.toString(16).padStart(8, '0')).join('');
}

/** murmurhash3js (an implementation of the same reference) on the string's UTF-16LE bytes, as a binary string. */
const theirs = (s: string) =>
  murmur.x86.hash128(Buffer.from(s, 'utf16le').toString('latin1'), 0).slice(0, 24);

describe('Function: murmur3x86_128of96', () => {
  it('is MurmurHash3 x86_128 of the UTF-16LE bytes, for every length of tail (0 to 7 code units) and beyond', () => {
    for (let n = 0; n <= 40; n++) {
      const s = Array.from({ length: n }, (_, i) => String.fromCharCode(0x41 + ((i * 7) % 26))).join('');
      expect(ours(s), s).toBe(theirs(s));
    }
    expect(ours('')).toBe('000000000000000000000000');
  });

  it('is the reference on any string: Japanese, emoji (surrogate pairs), lone surrogates, NUL', () => {
    for (const s of ['rows/1.json', '報告書/札幌.pdf', '😀/x', '\ud800', 'a\u0000b', 'ｶﾅ'.repeat(9)])
      expect(ours(s), s).toBe(theirs(s));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        expect(ours(s)).toBe(theirs(s));
      }),
      { numRuns: 500 },
    );
  });

  it('tells apart names that differ only above Latin-1 (a low byte alike)', () => {
    expect(ours('\u3042')).not.toBe(ours('\u3142'));
    expect(ours('rows/\u3042.json')).not.toBe(ours('rows/\u0042.json'));
  });
});
