import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  shownNames,
  shownOutputs,
  SUCCEEDED_TAIL_ROOM,
  succeededTail,
  writeSucceededTail,
} from '../../../../core/messages/results-row.ts';
import { LocalEntries } from '../../../../core/messages/zip.ts';

/** A JSON object's text with each of its letters, at random, written as a `\uXXXX` escape. */
function escapedJson(value: Record<string, string>, escape: readonly boolean[]): string {
  let i = 0;
  return JSON.stringify(value).replace(/[a-zA-Z]/g, (c) =>
    escape[i++ % escape.length] ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c,
  );
}

/** What the row shows for one output, read from its entry as the finalize reads it. */
function shownFromEntry(name: string, data: string): string {
  const entries = new LocalEntries();
  entries.add(name, data);
  return shownOutputs(entries.bytes(), 0, 1).shown;
}

describe('Function: shownOutputs / shownNames', () => {
  it('shows a messageId however its key is escaped, and the name of an object without one', () => {
    fc.assert(
      fc.property(
        // Small enough to be stored, not deflated (a deflated entry shows its name).
        fc.dictionary(
          fc.constantFrom('messageId', 'note', 'id', 'a"b', 'x\\y'),
          fc.oneof(
            fc.string({ maxLength: 6 }),
            // Text that looks like the key or an escape once written as JSON
            fc.constantFrom('\\u0041', '"messageId"', 'messageId', '\\', '\\"', '\\\\u'),
          ),
          {
            maxKeys: 3,
          },
        ),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        (value, escape) => {
          const data = escapedJson(value, escape);
          fc.pre(Buffer.byteLength(data) < 256);
          // An empty answer shows the name.
          const expected = value.messageId || 'out/1.json';
          expect(shownFromEntry('out/1.json', data)).toBe(expected);
          expect(shownNames([{ name: 'out/1.json', data }]) ?? shownFromEntry('out/1.json', data)).toBe(
            expected,
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('tells a json row with quoted values by its name, without reading the entries back', () => {
    const data = JSON.stringify({ id: '1', note: '至急, "指定"' });
    expect(data).toContain('\\"');
    expect(shownNames([{ name: 'rows/1.json', data }])).toBe('rows/1.json');
    expect(shownNames([{ name: 'rows/1.json', data: '{"id":"\\u0031"}' }])).toBeUndefined();
  });
});

describe('Function: writeSucceededTail', () => {
  it("writes a delimiter and succeededTail's text as UTF-8, within the room it asks for", () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.nat(),
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.constantFrom(',', ';', '\t', '|'),
        fc.nat({ max: 7 }),
        (n, line, output, d, at) => {
          // Prepare: a buffer of exactly the room, after `at` bytes of something else
          const b = Buffer.alloc(at + SUCCEEDED_TAIL_ROOM + 3 * output.length, 0xee);

          // Act
          const written = writeSucceededTail(b, at, n, line, output, d.charCodeAt(0));

          // Assess
          const expected = Buffer.from(d + succeededTail(n, line, output, d), 'utf8');
          expect(b.subarray(at, at + written).equals(expected)).toBe(true);
          expect(b.subarray(0, at).every((x) => x === 0xee)).toBe(true);
        },
      ),
    );
  });
});
