/**
 * Small writes into a buffer the caller made room in, done in JS: at a million records (a zip entry's name, a
 * sheet row's tail) a native Buffer call per few bytes costs more than the bytes.
 */

/** Texts up to this many characters are written in JS when ASCII. */
const SHORT_TEXT = 64;

/** `b.write(s, at, 'utf8')`: a short ASCII text is copied character by character; the bytes written. */
export function writeUtf8(b: Buffer, s: string, at: number): number {
  const len = s.length;
  if (len <= SHORT_TEXT) {
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[at + i] = c;
    }
    if (i === len) return len;
  }
  return b.write(s, at, 'utf8');
}

/**
 * A buffer with room for `n` more bytes after its first `used`: `b` itself when it has it, else a new one (at least
 * twice as large, and `min`) holding `b`'s first `used` bytes. The growth of every buffer built a record at a time.
 */
export function withRoom(b: Buffer, used: number, n: number, min = 0): Buffer {
  if (used + n <= b.length) return b;
  const next = Buffer.allocUnsafe(Math.max(b.length * 2, used + n, min));
  b.copy(next, 0, 0, used);
  return next;
}

/** `b.write(String(v), at, 'latin1')` for a safe integer ≥ 0 (a record's number or line); the bytes written. */
export function writeUint(b: Buffer, v: number, at: number): number {
  if (!(Number.isSafeInteger(v) && v >= 0)) return b.write(String(v), at, 'latin1');
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = digits - 1, x = v; i >= 0; i--, x = Math.floor(x / 10)) b[at + i] = 0x30 + (x % 10);
  return digits;
}
