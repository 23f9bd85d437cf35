import { describe, expect, it, vi } from 'vitest';
import {
  apiJob,
  expectAccessible,
  finishedJob,
  openConsole,
  screenshotPath,
  signIn,
  useConsoleWorld,
  waitForState,
} from '../helpers/console-world.ts';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

const world = useConsoleWorld();

/** `n` records of a CSV the json processor takes. */
const csv = (n: number) =>
  'id,name\n' + Array.from({ length: n }, (_, i) => `${i + 1},name ${i + 1}`).join('\n') + '\n';

describe("Console: a job's timeline", () => {
  it(
    'draws the job live while it runs, then its phases and one lane per worker with a bar per chunk attempt',
    { timeout: 120_000 },
    async () => {
      // Prepare: a job of two workers slow enough to be seen running (about 8 s of records per worker)
      const job = await apiJob(
        world,
        'sakai',
        csv(400),
        'fileName=timeline.csv&processor=json&workers=2&simulateDelayMs=40&concurrency=1',
      );
      const c = await openConsole(world, { hash: `#/jobs/${job.token}` });
      await signIn(c.page, world.tokens.sakai);
      const timeline = c.page.getByTestId('timeline');

      // Act, Assess: while it runs, bars appear (chunk attempts end one after another) before the job ends
      await expect
        .poll(() => timeline.getByTestId('timeline-bar').count(), { timeout: 60_000 })
        .toBeGreaterThan(0);
      const shownWhileRunning = await c.page.getByTestId('job-state').getAttribute('data-state');

      await waitForState(c.page, ['SUCCEEDED'], 60_000);
      const view = await finishedJob(world, 'sakai', job.token);
      // The finalize's spans come a moment after the job's end: the timeline polls on until it has them.
      await expect.poll(() => timeline.getByTestId('phase-finalize').count(), { timeout: 20_000 }).toBe(1);

      // Assess: the phases, one lane per worker, every chunk done once, the table alternative says the same
      for (const p of ['split', 'queueWait', 'workers', 'finalize'])
        expect(await timeline.getByTestId(`phase-${p}`).count(), p).toBe(1);
      const lanes = await timeline
        .getByTestId('timeline-lane')
        .evaluateAll((ls) => ls.map((l) => l.getAttribute('data-worker')));
      expect(lanes.length).toBeGreaterThanOrEqual(1);
      expect(lanes.length).toBeLessThanOrEqual(2);
      const outcomes = await timeline
        .getByTestId('timeline-bar')
        .evaluateAll((bs) => bs.map((b) => b.getAttribute('data-outcome')));
      expect(outcomes.filter((o) => o === 'done')).toHaveLength(view.progress.totalChunks!);
      expect(await timeline.getByTestId('timeline-summary').textContent()).toMatch(
        new RegExp(
          `^${lanes.length} workers, ${outcomes.length} chunk attempts \\(0 retried, 0 given up\\), [\\d.]+ s$`,
        ),
      );
      await timeline.getByText('Show as a table').click();
      expect(await timeline.getByTestId('timeline-table').locator('tbody tr').count()).toBe(outcomes.length);
      await expect.poll(() => c.page.getByRole('img', { name: /Timeline/ }).count()).toBe(1);
      expect(shownWhileRunning).toBe('RUNNING');
      await expectAccessible(c.page, 'the job page with its timeline');
      await c.page.screenshot({ path: screenshotPath('job-timeline'), fullPage: true });
      expect(await c.problems()).toEqual([]);
      await c.close();
    },
  );

  it('speaks Japanese, and a site never sees another site’s timeline', { timeout: 60_000 }, async () => {
    // Prepare
    const job = await apiJob(world, 'sakai', csv(20), 'fileName=ja.csv&processor=json');
    await finishedJob(world, 'sakai', job.token);
    const c = await openConsole(world, { locale: 'ja-JP', hash: `#/jobs/${job.token}` });
    await c.page.getByLabel('API トークン').fill(world.tokens.sakai);
    await c.page.getByRole('button', { name: 'サインイン' }).click();

    // Act, Assess
    const timeline = c.page.getByTestId('timeline');
    await expect.poll(() => timeline.getByRole('heading', { name: 'タイムライン' }).count()).toBe(1);
    await expect
      .poll(() => timeline.getByTestId('timeline-summary').textContent({ timeout: 20_000 }))
      .toMatch(/^ワーカー \d+ 台/);
    const other = await fetch(`${world.rt.apiUrl}/jobs/${job.token}/timeline`, {
      headers: { authorization: `Bearer ${world.tokens.kawasaki}` },
    });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect(await c.problems()).toEqual([]);
    await c.close();
  });
});
