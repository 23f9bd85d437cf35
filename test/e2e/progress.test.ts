/**
 * Progress that moves (issue 8): a job of slow records (100 ms each) is cut into chunks of about a second of
 * work, so the records done rise steadily while it runs — without a DynamoDB write per record.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { lastJsonLine, rowfleet, runArgs } from '../helpers/cli.ts';
import { tempDirs } from '../helpers/temp.ts';

const newDir = tempDirs();

describe('Scenario: a job of 100 ms records', () => {
  it('shows the records done rising while it runs (the CLI prints progress every 2 s)', async () => {
    // Prepare: 1,000 records × 100 ms, 10 at a time on one worker: about 10 s of work
    const dir = await newDir('rowfleet-progress-');
    const file = join(dir, 'slow.csv');
    await writeSampleCsv(file, 1000);

    // Act
    const r = await rowfleet(
      runArgs(file, {
        processor: 'json',
        workers: 1,
        concurrency: 10,
        delayMs: 100,
        stateDir: join(dir, 'state'),
        out: join(dir, 'out'),
      }),
      120_000,
    );

    // Assess: several distinct counts between 0 and the total, rising
    expect(r.code, r.stderr).toBe(0);
    expect(lastJsonLine(r.stdout).state).toBe('SUCCEEDED');
    const done = [...r.stderr.matchAll(/^RUNNING (\d+)\/1000 records/gm)].map((m) => Number(m[1]));
    const between = [...new Set(done.filter((d) => d > 0 && d < 1000))];
    expect(between.length, r.stderr).toBeGreaterThanOrEqual(3);
    expect([...done].sort((a, b) => a - b)).toEqual(done);
  });
});
