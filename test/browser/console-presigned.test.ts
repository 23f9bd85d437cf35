import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  openConsole,
  shownToken,
  signIn,
  startConsoleWorld,
  waitForState,
  writeTemp,
  type ConsoleWorld,
} from './support.ts';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

/**
 * A browser POSTs a large file straight to the bucket: a cross-origin request that the bucket's CORS rule must
 * allow. The embedded S3 emulator answers no CORS yet (local/emulators.ts), so this file's Chromium runs with
 * --disable-web-security: everything else is real (the Content-Security-Policy still applies, the emulator
 * checks the policy and raises the S3 event, the split runs on it). Once the emulator answers CORS, the same
 * test without the flag is in console-routes.pending.ts, and this file goes.
 */
let world: ConsoleWorld;

beforeAll(async () => {
  world = await startConsoleWorld({ browserArgs: ['--disable-web-security'] });
});

afterAll(async () => {
  await world?.stop();
});

describe('Console: large files', () => {
  it('sends a file above the direct-upload limit through POST /uploads and the presigned POST, with progress', async () => {
    // Prepare: 5 records of ~0.95 MB each, above the 4,500,000-byte direct-upload limit
    const big = 'x'.repeat(950_000);
    const csv = 'id,data\n' + [1, 2, 3, 4, 5].map((n) => `${n},${big}`).join('\n') + '\n';
    const file = writeTemp('large.csv', csv);
    const c = await openConsole(world, { hash: '#/upload' });
    await signIn(c.page, world.tokens.sakai);
    const s3 = new URL(world.rt.endpoints.s3sqs!).origin;
    const posts: string[] = [];
    c.page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    await c.page.evaluate(() => {
      // Record every value the progress bar takes.
      const seen: number[] = [];
      (window as unknown as { progressSeen: number[] }).progressSeen = seen;
      new MutationObserver(() => {
        const p = document.querySelector<HTMLProgressElement>('#upload-progress');
        if (p) seen.push(p.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });

    // Act
    await c.page.getByLabel('Choose a file').setInputFiles(file);
    await c.page.getByRole('button', { name: 'Upload', exact: true }).click();
    await c.page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const progressSeen = await c.page.evaluate(
      () => (window as unknown as { progressSeen: number[] }).progressSeen,
    );
    const state = await waitForState(c.page, ['SUCCEEDED', 'PARTIAL', 'FAILED', 'REJECTED']);
    const job = await world.rt.deps.jobs.get('sakai', shownToken(c.page));

    // Assess
    expect(csv.length).toBeGreaterThan(4_500_000);
    expect(posts.filter((u) => u.startsWith(world.origin)).map((u) => new URL(u).pathname)).toEqual([
      '/uploads',
    ]);
    expect(posts.filter((u) => u.startsWith(s3))).toHaveLength(1);
    expect(Math.max(...progressSeen)).toBe(100);
    expect(state).toBe('SUCCEEDED');
    expect(job).toMatchObject({ upload: 'presigned', fileName: 'large.csv', totalRecords: 5, succeeded: 5 });
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});
