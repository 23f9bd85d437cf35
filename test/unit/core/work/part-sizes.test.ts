import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitPart } from '../../../../core/messages/part.ts';
import { PartSizes } from '../../../../core/work/chunk-part.ts';
import { processChunk } from '../../../../core/work/process-chunk.ts';
import type { RowProcessor } from '../../../../core/processors/types.ts';
import { RUNNING_JOB, runningChunk } from '../../../helpers/running-job.ts';

const job = RUNNING_JOB;

describe('Class: PartSizes', () => {
  it('makes no room before a part, then room for the mean a record so far, an eighth more', () => {
    // Prepare
    const sizes = new PartSizes();
    const before = sizes.room(20);

    // Act
    sizes.add(10, 1000, 400);
    sizes.add(0, 5000, 5000);
    sizes.add(30, 3000, 1200);

    // Assess: 4,000 bytes of entries and 1,600 of rows over 40 records
    expect(before).toBeUndefined();
    expect(sizes.room(20)).toEqual({ entries: 2250, rows: 900 });
  });
});

describe('Function: processChunk (buffers made from the sizes so far)', () => {
  it('builds the same part whatever room its buffers were made with', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        // Each record's output: its length in characters (ASCII or not), up to a few KiB.
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.boolean()), { minLength: 1, maxLength: 8 }),
        // The sizes before: none, far too small or far too large.
        fc.option(
          fc.tuple(
            fc.integer({ min: 1, max: 1000 }),
            fc.integer({ min: 0, max: 4_000_000 }),
            fc.integer({ min: 0, max: 4_000_000 }),
          ),
        ),
        async (count, shapes, before) => {
          const processor: RowProcessor = {
            name: 'sized',
            description: 'outputs of given sizes',
            process: (row) => {
              const [length, wide] = shapes[row.n % shapes.length]!;
              return [{ name: `out/${row.n}.txt`, data: (wide ? 'あ' : 'a').repeat(length) }];
            },
          };
          const { msg, records } = runningChunk(count);
          const sizes = new PartSizes();
          if (before) sizes.add(...before);

          const plain = await processChunk(job, msg, records, processor, {}, undefined, []);
          const sized = await processChunk(job, msg, records, processor, { sizes }, undefined, []);

          expect(sized.part.equals(plain.part)).toBe(true);
          expect(splitPart(sized.part).sheet?.length).toBeGreaterThan(0);
          expect(sized).toMatchObject({ succeeded: count, failed: 0 });
        },
      ),
      { numRuns: 60 },
    );
  });
});
