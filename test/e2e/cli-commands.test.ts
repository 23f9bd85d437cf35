import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJsonLine, rowfleet, type CliResult, type RunJson } from '../helpers/cli.ts';

/**
 * The commands the README shows that no other test runs through the CLI: `loadtest`, `retry` and `token create`,
 * each as a user types it, on one state directory (test/unit/docs-commands.test.ts holds every documented command
 * to a test that runs it).
 */

let dir: string;
let stateDir: string;
let loadtest: CliResult;
let summary: RunJson;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-cli-commands-'));
  stateDir = join(dir, 'state');
  loadtest = await rowfleet([
    'loadtest',
    '--records',
    '300',
    '--site',
    'sakai',
    '--json',
    '--state-dir',
    stateDir,
    '--out',
    join(dir, 'out'),
  ]);
  summary = lastJsonLine(loadtest.stdout);
}, 180_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('CLI: rowfleet loadtest, retry and token create', { timeout: 120_000 }, () => {
  it('loadtest generates a job of --records records and runs it to SUCCEEDED, exit 0', () => {
    // Assess
    expect(loadtest.code, loadtest.stderr).toBe(0);
    expect(summary).toMatchObject({
      site: 'sakai',
      state: 'SUCCEEDED',
      rows: { total: 300, succeeded: 300, failed: 0, rejected: 0 },
    });
  });

  it('retry of a job with nothing left to run answers NOTHING_TO_RETRY, exit 1', async () => {
    // Prepare
    const args = ['retry', summary.token, '--site', 'sakai', '--json', '--state-dir', stateDir];

    // Act
    const r = await rowfleet(args);

    // Assess
    expect(r.code, r.stderr).toBe(1);
    expect(lastJsonLine(r.stdout)).toMatchObject({
      token: summary.token,
      state: 'FAILED',
      error: { code: 'NOTHING_TO_RETRY' },
    });
  });

  it('token create prints an API token bound to the site', async () => {
    // Prepare
    const args = ['token', 'create', '--site', 'sakai', '--state-dir', stateDir];

    // Act
    const r = await rowfleet(args);

    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^rf_sakai_[\w-]{20,}$/);
  });
});
