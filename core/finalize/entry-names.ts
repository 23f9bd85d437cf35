import { namedRecords, type PartMeta, type RecordFailure } from '../messages/part.ts';

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
    let entry = 0;
    for (const r of namedRecords(m.names)) {
      const first = r.hashes.map((h) => taken.get(h)).find((n) => n !== undefined);
      if (first === undefined) for (const h of r.hashes) taken.set(h, r.n);
      else {
        const s = skip.get(m.chunk) ?? new Set<number>();
        for (let i = 0; i < r.hashes.length; i++) s.add(entry + i);
        skip.set(m.chunk, s);
        failures.push({
          n: r.n,
          line: r.line,
          code: 'ZIP_ENTRY_NAME',
          message: `an output's name is the name of an output of record ${first} (another chunk): none of this record's outputs are in the zip`,
          raw: '',
        });
      }
      entry += r.hashes.length;
    }
  }
  return { skip, failures };
}
