import { eachNamedRecord, NAME_HASH_CHARS, type PartMeta, type RecordFailure } from '../messages/part.ts';

/**
 * Zip entry names across chunks. A worker refuses a name an earlier record of its own chunk took
 * (process-chunk.ts, ZIP_ENTRY_NAME); a name taken by records of two chunks is found here, from the name hashes
 * each part's meta carries (PartMeta.names), in the finalize's first pass: no part is read twice. In chunk order,
 * the first record to take a name keeps it; a later record taking any name already taken fails with
 * ZIP_ENTRY_NAME, none of its entries go into the zip, and it counts as failed instead of succeeded.
 */
export interface NamesTakenElsewhere {
  /** Per chunk number, the indices of the part's entries to leave out of the zip. */
  readonly skip: ReadonlyMap<number, ReadonlySet<number>>;
  /** The records refused (line and raw text read again from the source when it can be). */
  readonly failures: RecordFailure[];
}

/** Finds the records whose outputs take a name a record of an earlier chunk took (`metas` in chunk order). */
export function namesTakenElsewhere(metas: readonly PartMeta[]): NamesTakenElsewhere {
  const taken = new NameTable(metas.reduce((a, m) => a + (m.names ? m.entries : 0), 0));
  const skip = new Map<number, Set<number>>();
  const failures: RecordFailure[] = [];
  for (const m of metas) {
    const names = m.names;
    if (!names) continue;
    let entry = 0;
    // In place (eachNamedRecord), into a table of numbers: a million names make no string, object or array each.
    eachNamedRecord(names, (n, line, from, to) => {
      const count = Math.ceil((to - from) / NAME_HASH_CHARS);
      let first = 0;
      // One output (most records): looked up and taken in one probe.
      if (count === 1) first = taken.claim(names, from, n);
      else {
        for (let h = from; h < to && first === 0; h += NAME_HASH_CHARS) first = taken.get(names, h);
        if (first === 0) for (let h = from; h < to; h += NAME_HASH_CHARS) taken.set(names, h, n);
      }
      if (first !== 0) {
        const s = skip.get(m.chunk) ?? new Set<number>();
        for (let i = 0; i < count; i++) s.add(entry + i);
        skip.set(m.chunk, s);
        failures.push({
          n,
          line,
          code: 'ZIP_ENTRY_NAME',
          message: `an output's name is the name of an output of record ${first} (another chunk): none of this record's outputs are in the zip`,
          raw: '',
        });
      }
      entry += count;
    });
  }
  return { skip, failures };
}

/** base64 character code → its 6 bits (the alphabet of node:crypto's 'base64'); -1 for any other. */
const SIXBITS = new Int8Array(128).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries())
  SIXBITS[c.charCodeAt(0)] = i;

/**
 * Name hash → the record that took it, as an open-addressing table of numbers (linear probing). A hash's 16
 * base64 characters are 96 bits, kept whole as two 48-bit halves (exact in a double), so two hashes are equal
 * exactly when their halves are: no string per name, and no false match. A slot is three doubles side by side
 * (the halves, the record), so a probe reads one cache line, not one per array: the table is far larger than any
 * cache. A million names cost 2^21 slots of 24 bytes (48 MiB, off the JS heap) where a Map of their strings held
 * ~100 MiB of heap (measured at 1M records).
 */
class NameTable {
  /** hi, lo, record per slot; record 0 for an empty slot (records are numbered from 1). */
  private slots: Float64Array;
  private mask: number;
  private used = 0;

  constructor(expected: number) {
    let capacity = 1024;
    while (capacity < expected * 2) capacity *= 2;
    this.slots = new Float64Array(capacity * 3);
    this.mask = capacity - 1;
  }

  /** The record that took the hash at `at` of `s`, or 0. */
  get(s: string, at: number): number {
    const hi = half(s, at);
    const lo = half(s, at + 8);
    const t = this.slots;
    for (let i = slotOf(hi, this.mask); ; i = (i + 1) & this.mask) {
      const r = t[i * 3 + 2]!;
      if (r === 0 || (t[i * 3] === hi && t[i * 3 + 1] === lo)) return r;
    }
  }

  /** Gives the hash at `at` of `s` to record `n` (a hash not taken yet). */
  set(s: string, at: number, n: number): void {
    if ((this.used + 1) * 2 > this.mask + 1) this.grow();
    this.put(half(s, at), half(s, at + 8), n);
  }

  /** {@link get}, then {@link set} when the hash was not taken, in one probe: the record that had it, or 0. */
  claim(s: string, at: number, n: number): number {
    if ((this.used + 1) * 2 > this.mask + 1) this.grow();
    const hi = half(s, at);
    const lo = half(s, at + 8);
    const t = this.slots;
    for (let i = slotOf(hi, this.mask); ; i = (i + 1) & this.mask) {
      const r = t[i * 3 + 2]!;
      if (r === 0) {
        t[i * 3] = hi;
        t[i * 3 + 1] = lo;
        t[i * 3 + 2] = n;
        this.used++;
        return 0;
      }
      if (t[i * 3] === hi && t[i * 3 + 1] === lo) return r;
    }
  }

  private put(hi: number, lo: number, n: number): void {
    const t = this.slots;
    let i = slotOf(hi, this.mask);
    while (t[i * 3 + 2] !== 0) i = (i + 1) & this.mask;
    t[i * 3] = hi;
    t[i * 3 + 1] = lo;
    t[i * 3 + 2] = n;
    this.used++;
  }

  /** A part's meta that undercounted its entries: twice the room, every hash placed again. */
  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    this.mask = (this.mask << 1) | 1;
    this.used = 0;
    for (let i = 0; i < old.length; i += 3) if (old[i + 2] !== 0) this.put(old[i]!, old[i + 1]!, old[i + 2]!);
  }
}

/** The 48 bits of 8 base64 characters of `s` from `at` (SHA-256 bits: any of them spread the slots evenly). */
function half(s: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = s.charCodeAt(i);
    const bits = c < 128 ? SIXBITS[c]! : -1;
    if (bits < 0) throw new Error(`part names: "${s.slice(at, at + 8)}" is not base64`);
    v = v * 64 + bits;
  }
  return v;
}

function slotOf(hi: number, mask: number): number {
  // The low 32 bits of the half (its last 5 characters and a bit): uniform, as the hash is.
  return (hi % 4294967296) & mask;
}
