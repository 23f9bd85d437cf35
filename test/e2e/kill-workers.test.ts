import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { lastJsonLine, rowfleet, runArgs } from '../helpers/cli.ts';
import { tempDirs } from '../helpers/temp.ts';
import { readZip } from '../helpers/zip.ts';
import { startedWorkers } from '../helpers/tasks.ts';

const newDir = tempDirs();

describe('Scenario: workers killed mid-job', () => {
  it('ends SUCCEEDED with every record exactly once after two of three workers get SIGKILL', async () => {
    // Prepare: a job long enough (delay per record) to kill workers while they hold chunks
    const dir = await newDir('rowfleet-kill-');
    const records = 6000;
    const file = join(dir, 'jobs.csv');
    await writeSampleCsv(file, records);
    const stateDir = join(dir, 'state');

    // Act
    const run = rowfleet(
      runArgs(file, {
        processor: 'json',
        workers: 3,
        delayMs: 10,
        // Few records in flight per worker, so the job lasts ~10 s and the kill lands while chunks are held.
        concurrency: 2,
        stateDir,
        out: join(dir, 'out'),
      }),
      150_000,
    );
    const pids = await startedWorkers(stateDir, 3, 20_000);
    expect(pids).toHaveLength(3);
    await new Promise((r) => setTimeout(r, 1500)); // let them take chunks
    const killed = pids.slice(0, 2);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    const result = await run;

    // Assess: the job recovered, and the zip holds each record once
    const summary = lastJsonLine(result.stdout);
    expect(result.code, result.stderr).toBe(0);
    expect(summary.state).toBe('SUCCEEDED');
    expect(summary.rows).toEqual({ total: records, succeeded: records, failed: 0, rejected: 0 });
    const names = (await readZip(summary.zip!)).map((e) => e.name).filter((n) => n.startsWith('rows/'));
    expect(names).toHaveLength(records);
    expect(new Set(names).size).toBe(records);
    const numbers = names.map((n) => Number(/rows\/(\d+)\.json/.exec(n)![1])).sort((a, b) => a - b);
    expect(numbers[0]).toBe(1);
    expect(numbers[records - 1]).toBe(records);
  });
});
