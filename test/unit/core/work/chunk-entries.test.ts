import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkEntries } from '../../../../core/work/chunk-part.ts';
import { entryNameProblem, LocalEntries } from '../../../../core/messages/zip.ts';
import { nameHash, namesRehashed } from '../../../../core/messages/part.ts';
import { localEntryNames } from '../../../../core/messages/zip.ts';
import { NAME_HASH, type NameHashKind } from '../../../../core/jobs/store.ts';
import type { RowOutput } from '../../../../core/processors/types.ts';

/**
 * ChunkEntries' rules as one loop over any record's outputs (the code before a record of one output took its own
 * path): each name checked, then all added, the record's `<n>:<line>:<hashes>` appended to the names.
 */
class ModelEntries {
  private readonly taken = new Set<string>();
  names = '';
  constructor(
    readonly entries: LocalEntries,
    private readonly kind?: NameHashKind,
  ) {}

  add(n: number, line: number, outputs: readonly RowOutput[]): string | undefined {
    const own = new Set<string>();
    for (const o of outputs) {
      const problem =
        entryNameProblem(o.name) ??
        (this.taken.has(o.name) || own.has(o.name)
          ? 'an earlier record of the chunk took the name'
          : undefined);
      if (problem) return `output "${o.name}" cannot be an entry of the zip: ${problem}`;
      own.add(o.name);
    }
    if (outputs.length === 0) return undefined;
    let hashes = '';
    for (const o of outputs) {
      this.entries.add(o.name, o.data);
      this.taken.add(o.name);
      hashes += nameHash(o.name, this.kind);
    }
    this.names += `${this.names ? ' ' : ''}${n}:${line}:${hashes}`;
    return undefined;
  }
}

/** Names from a small pool (taken twice often), bad ones among them. */
const name = fc.constantFrom(
  'rows/1.json',
  'rows/2.json',
  'a',
  'b/c',
  '山/1',
  'x'.repeat(70),
  '../x',
  '',
  'results.csv',
);
const output = fc.record({ name, data: fc.oneof(fc.string({ maxLength: 5 }), fc.constant('{"x":1}')) });

describe('Class: ChunkEntries', () => {
  it('answers, adds and names as the one-loop rules do, for records of one output and of several', () => {
    let one = 0;
    fc.assert(
      fc.property(
        fc.array(fc.array(output, { maxLength: 3 }), { maxLength: 12 }),
        fc.nat({ max: 1e9 }),
        fc.constantFrom(undefined, NAME_HASH),
        (records, first, kind) => {
          const entries = new ChunkEntries(new LocalEntries(), kind);
          const model = new ModelEntries(new LocalEntries(), kind);
          records.forEach((outputs, i) => {
            if (outputs.length === 1) one++;
            // Same answer (the echoed name of a plain pool name is the name).
            expect(entries.add(first + i, first + 2 * i + 1, outputs)).toBe(
              model.add(first + i, first + 2 * i + 1, outputs),
            );
          });
          expect(entries.entries.bytes()).toEqual(model.entries.bytes());
          expect(entries.summary).toBe(model.names || undefined);
        },
      ),
      { numRuns: 1000 },
    );
    // Records of one output (the own path) were among them.
    expect(one).toBeGreaterThan(1000);
  });

  it("names a job's entries with its hash, and a part hashed otherwise reads the same once hashed again from its entries", () => {
    fc.assert(
      fc.property(fc.array(fc.array(output, { maxLength: 3 }), { maxLength: 12 }), (records) => {
        const older = new ChunkEntries(new LocalEntries());
        const current = new ChunkEntries(new LocalEntries(), NAME_HASH);
        records.forEach((outputs, i) => {
          expect(current.add(i + 1, i + 2, outputs)).toBe(older.add(i + 1, i + 2, outputs));
        });
        const entries = older.entries.bytes();
        expect(localEntryNames(entries)).toEqual(localEntryNames(current.entries.bytes()));
        if (older.summary === undefined) {
          expect(current.summary).toBeUndefined();
          return;
        }
        // Not the same hashes (SHA-256 against MurmurHash3), the same records.
        expect(current.summary).not.toBe(older.summary);
        expect(namesRehashed(older.summary, localEntryNames(entries), NAME_HASH)).toBe(current.summary);
        expect(namesRehashed(current.summary!, localEntryNames(entries))).toBe(older.summary);
      }),
      { numRuns: 300 },
    );
  });

  it('is MurmurHash3 for a job that says so: 16 base64 characters, unlike SHA-256 and alike for the same name', () => {
    expect(nameHash('rows/1.json', NAME_HASH)).toMatch(/^[A-Za-z0-9+/]{16}$/);
    expect(nameHash('rows/1.json', NAME_HASH)).toBe(nameHash('rows/1.json', NAME_HASH));
    expect(nameHash('rows/1.json', NAME_HASH)).not.toBe(nameHash('rows/1.json'));
    expect(nameHash('rows/1.json', NAME_HASH)).not.toBe(nameHash('rows/2.json', NAME_HASH));
  });
});
