import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BinaryHeap } from '../../../../core/shared/heap.ts';

describe('BinaryHeap', () => {
  it('gives back every item pushed, first by `before`, whatever the order of pushes and pops', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: -50, max: 50 }), { freq: 3 })), (ops) => {
        // Prepare: a push per number, a pop per null, against a sorted list doing the same
        const heap = new BinaryHeap<number>((a, b) => a < b);
        const model: number[] = [];
        const popped: (number | undefined)[] = [];
        const expected: (number | undefined)[] = [];

        // Act
        for (const op of ops) {
          if (op === null) {
            popped.push(heap.pop());
            expected.push(model.shift());
          } else {
            heap.push(op);
            model.push(op);
            model.sort((a, b) => a - b);
          }
        }

        // Assess
        expect(popped).toEqual(expected);
        expect(heap.size).toBe(model.length);
      }),
    );
  });
});
