import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { dynamoClient } from '../../core/aws/clients.ts';
import { keys, newJobToken } from '../../core/jobs/keys.ts';
import { jobKey } from '../../core/jobs/store.ts';
import { openConsole, signIn, useConsoleWorld } from '../helpers/console-world.ts';

const world = useConsoleWorld();

/** `count` finished jobs of `site` in the runtime's table, one a second from 2020 on; tokens newest first. */
async function seedFinishedJobs(site: string, count: number): Promise<string[]> {
  const items = Array.from({ length: count }, (_, i) => {
    const token = newJobToken();
    return {
      ...jobKey(site, token),
      site,
      token,
      state: 'SUCCEEDED',
      processor: 'json',
      upload: 'direct',
      fileName: `old-${i}.csv`,
      sourceKey: keys.source(site, token),
      receivedAt: new Date(Date.UTC(2020, 0, 1) + i * 1000).toISOString(),
      finishedAt: new Date(Date.UTC(2020, 0, 1) + i * 1000 + 500).toISOString(),
      totalRecords: 1,
      totalChunks: 1,
      chunksDone: 1,
      succeeded: 1,
      failed: 0,
      rejected: 0,
    };
  });
  for (let i = 0; i < items.length; i += 25) {
    await dynamoClient().send(
      new BatchWriteCommand({
        RequestItems: {
          [world.rt.deps.env.table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
        },
      }),
    );
  }
  return items.map((j) => j.token).reverse();
}

describe('Console: the jobs list pages', () => {
  it('shows the newest 50 jobs, then older ones a page at a time, each once, until there are no more', async () => {
    // Prepare
    const tokens = await seedFinishedJobs('kawasaki', 130);
    const c = await openConsole(world, { hash: '#/jobs' });
    await signIn(c.page, world.tokens.kawasaki);
    const rows = c.page.locator('tr[data-token]');
    await expect.poll(() => rows.count()).toBe(50);
    const more = c.page.getByRole('button', { name: 'Older jobs' });

    // Act
    const counts: number[] = [];
    while (await more.isVisible()) {
      await more.click();
      await expect.poll(() => rows.count()).toBeGreaterThan(counts.at(-1) ?? 50);
      counts.push(await rows.count());
    }
    const listed = await rows.evaluateAll((r) => r.map((e) => e.getAttribute('data-token')));

    // Assess
    expect(counts).toEqual([100, 130]);
    expect(listed).toEqual(tokens);
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});
