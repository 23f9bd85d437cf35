/**
 * MurmurHash3 x86_128 (Austin Appleby's reference, seed 0) of a string's UTF-16 code units, each as its two bytes
 * little-endian: the bytes of `Buffer.from(s, 'utf16le')`, read from the string without making them. Written here
 * rather than taken from a package: the zip entry names' hash is computed once per output (a million times for a
 * million records) and must cost no object, string or buffer per name. The JavaScript packages on npm answer a hex
 * string, and hash `charCodeAt(i) & 0xff` (two names that differ only above Latin-1 would collide). Held to one of
 * them (murmurhash3js, on the same bytes as a binary string) by test/unit/core/shared/murmur3.test.ts; the figures
 * are in docs/DESIGN.md ("Written here, not taken from a library").
 */

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The hash's first three 32-bit words (h1, h2, h3: 96 of its 128 bits), unsigned, into `out`. */
export function murmur3x86_128of96(s: string, out: Uint32Array): void {
  const len = s.length;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  let i = 0;
  // 16 bytes a block: eight code units.
  for (const blocks = len & ~7; i < blocks; i += 8) {
    let k1 = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    let k2 = s.charCodeAt(i + 2) | (s.charCodeAt(i + 3) << 16);
    let k3 = s.charCodeAt(i + 4) | (s.charCodeAt(i + 5) << 16);
    let k4 = s.charCodeAt(i + 6) | (s.charCodeAt(i + 7) << 16);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul((rotl(h1, 19) + h2) | 0, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul((rotl(h2, 17) + h3) | 0, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul((rotl(h3, 15) + h4) | 0, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul((rotl(h4, 13) + h1) | 0, 5) + 0x32ac3b17) | 0;
  }
  // The tail: up to seven code units (14 bytes). A lane without tail bytes mixes a zero, which changes nothing.
  // (charCodeAt past the end is NaN, which `|` and `<<` take as 0.)
  const r = len - i;
  if (r > 0) h1 ^= Math.imul(rotl(Math.imul(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16), C1), 15), C2);
  if (r > 2) h2 ^= Math.imul(rotl(Math.imul(s.charCodeAt(i + 2) | (s.charCodeAt(i + 3) << 16), C2), 16), C3);
  if (r > 4) h3 ^= Math.imul(rotl(Math.imul(s.charCodeAt(i + 4) | (s.charCodeAt(i + 5) << 16), C3), 17), C4);
  if (r > 6) h4 ^= Math.imul(rotl(Math.imul(s.charCodeAt(i + 6), C4), 18), C1);
  const bytes = len * 2;
  h1 ^= bytes;
  h2 ^= bytes;
  h3 ^= bytes;
  h4 ^= bytes;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  out[0] = h1;
  out[1] = (h2 + h1) | 0;
  out[2] = (h3 + h1) | 0;
}
