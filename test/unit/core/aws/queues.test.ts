import { describe, expect, it } from 'vitest';
import { batchBodies } from '../../../../core/aws/queues.ts';

describe('Function: batchBodies', () => {
  it('groups at most 10 bodies per SendMessageBatch, in order', () => {
    // Prepare
    const bodies = Array.from({ length: 25 }, (_, i) => `body-${i}`);

    // Act
    const groups = batchBodies(bodies);

    // Assess
    expect(groups.map((g) => g.length)).toEqual([10, 10, 5]);
    expect(groups.flat()).toEqual(bodies);
  });

  it('keeps each group under the byte budget (1 MiB per batch on SQS)', () => {
    // Prepare: 300 KiB bodies: only three fit in one batch
    const bodies = Array.from({ length: 7 }, (_, i) => String(i).repeat(300 * 1024));

    // Act
    const groups = batchBodies(bodies);

    // Assess
    expect(groups.map((g) => g.length)).toEqual([3, 3, 1]);
    for (const g of groups) {
      expect(g.reduce((s, b) => s + Buffer.byteLength(b), 0)).toBeLessThanOrEqual(1024 * 1024);
    }
    expect(groups.flat()).toEqual(bodies);
  });

  it('counts bytes, not characters, for multi-byte text', () => {
    // Prepare: 200k characters of 3-byte text is 600 KB: two cannot share a batch of 1 MiB
    const bodies = ['山'.repeat(200_000), '田'.repeat(200_000)];

    // Act
    const groups = batchBodies(bodies);

    // Assess
    expect(groups).toEqual([[bodies[0]], [bodies[1]]]);
  });

  it('returns no group for no bodies', () => {
    // Prepare
    const bodies: string[] = [];

    // Act
    const groups = batchBodies(bodies);

    // Assess
    expect(groups).toEqual([]);
  });
});
