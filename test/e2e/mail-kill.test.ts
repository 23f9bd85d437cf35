/**
 * Bulk mail under kill -9 (issue 8's acceptance scenario, at a size that runs in a minute): a mail job on three
 * worker processes, two of them killed with SIGKILL while they send. The job ends; no address gets two mails;
 * every row is sent once (in the zip) or in errors.csv, IN_DOUBT only for rows a killed worker had claimed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleRecipient, writeSampleCsv } from '../../cli/gen-data.ts';
import type { ListedMail } from '../../cli/mail.ts';
import { lastJsonLine, rowfleet, runArgs } from '../helpers/cli.ts';
import { parseErrorsCsv } from '../helpers/jepsen.ts';
import { readZipText } from '../helpers/zip.ts';
import { startedWorkers } from '../helpers/tasks.ts';
import { tempDirs } from '../helpers/temp.ts';

const newDir = tempDirs();

async function linesOf(file: string): Promise<number> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').length - 1;
}

describe('Scenario: mail workers killed mid-send', () => {
  it('sends every row at most once: sent (in the zip) + in doubt (killed workers only) = all rows', async () => {
    // Prepare
    const dir = await newDir('rowfleet-mail-kill-');
    const rows = 600;
    const file = join(dir, 'customers.csv');
    await writeSampleCsv(file, rows, 'utf-8', { email: true });
    const stateDir = join(dir, 'state');

    // Act: 200 ms per mail, three workers; two killed while they send
    const run = rowfleet(
      runArgs(file, { processor: 'mail', workers: 3, delayMs: 200, stateDir, out: join(dir, 'out') }),
      150_000,
    );
    const pids = await startedWorkers(stateDir, 3, 30_000);
    expect(pids).toHaveLength(3);
    // Kill once the workers are sending (the local SES keeps its mails in the state dir as they arrive).
    const mailsFile = join(stateDir, 'emulators', 'ses-mails.ndjson');
    for (let i = 0; i < 300 && (await linesOf(mailsFile)) < rows / 4; i++)
      await new Promise((r) => setTimeout(r, 50));
    const killed = pids.slice(0, 2);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    const result = await run;
    const summary = lastJsonLine(result.stdout);
    const listed = await rowfleet([
      'mail',
      'list',
      '--token',
      summary.token,
      '--json',
      '--state-dir',
      stateDir,
    ]);

    // Assess: the job ended, counts add up
    expect(result.code, result.stderr).toBe(0);
    expect(['SUCCEEDED', 'PARTIAL']).toContain(summary.state);
    expect(summary.rows.total).toBe(rows);
    expect(summary.rows.succeeded + summary.rows.failed + summary.rows.rejected).toBe(rows);

    // Assess: sent rows in the zip, once each; the rest in errors.csv, only IN_DOUBT, claimed by a killed worker
    const zip = await readZipText(summary.zip!);
    const sent = [...zip.keys()].filter((k) => k.startsWith('mail/')).map((k) => Number(/\d+/.exec(k)![0]));
    const errors = parseErrorsCsv(zip.get('errors.csv')!);
    expect(new Set(sent).size).toBe(sent.length);
    expect(sent.length).toBe(summary.rows.succeeded);
    expect(errors.length).toBe(summary.rows.failed);
    expect(errors.every((e) => e.code === 'IN_DOUBT')).toBe(true);
    for (const e of errors) {
      const by = /claimed by [^/\s]+\/(\d+)/.exec(e.message);
      expect(by, e.message).not.toBeNull();
      expect(killed).toContain(Number(by![1]));
    }
    expect(new Set([...sent, ...errors.map((e) => e.n)]).size).toBe(rows);

    // Assess: the mails the SES took: no address twice; each sent row's mail among them, with its message id
    expect(listed.code, listed.stderr).toBe(0);
    const mails = JSON.parse(listed.stdout.trim().split('\n').pop()!) as ListedMail[];
    expect(new Set(mails.map((m) => m.to)).size).toBe(mails.length);
    const byRow = new Map(mails.map((m) => [m.n, m]));
    for (const n of sent) {
      const result = JSON.parse(zip.get(`mail/${n}.json`)!) as { to: string; messageId: string };
      expect(result.to).toBe(sampleRecipient(n));
      expect(byRow.get(n)?.messageId).toBe(result.messageId);
    }
    const doubtful = new Set(errors.map((e) => e.n));
    for (const m of mails) expect(sent.includes(m.n!) || doubtful.has(m.n!)).toBe(true);
    expect(mails.length).toBeGreaterThanOrEqual(sent.length);
    expect(mails.length).toBeLessThanOrEqual(rows);
  });
});
