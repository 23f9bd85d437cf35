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
  /** Name hash → the record that took it. */
  const taken = new Map<string, number>();
  const skip = new Map<number, Set<number>>();
  const failures: RecordFailure[] = [];
  for (const m of metas) {
    const names = m.names;
    if (!names) continue;
    let entry = 0;
    // In place (eachNamedRecord): a million records' names are a million Map keys, and nothing more is made.
    eachNamedRecord(names, (n, line, from, to) => {
      const hash = (h: number) => names.slice(h, Math.min(h + NAME_HASH_CHARS, to));
      let first: number | undefined;
      for (let h = from; h < to && first === undefined; h += NAME_HASH_CHARS) first = taken.get(hash(h));
      const count = Math.ceil((to - from) / NAME_HASH_CHARS);
      if (first === undefined) for (let h = from; h < to; h += NAME_HASH_CHARS) taken.set(hash(h), n);
      else {
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
