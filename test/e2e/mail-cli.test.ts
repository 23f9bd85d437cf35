import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { localDay } from '../../core/usage/days.ts';
import { lastJsonLine, REPO_ROOT, rowfleet } from '../helpers/cli.ts';

const ROWFLEET = fileURLToPath(new URL('../../scripts/rowfleet.mjs', import.meta.url));
const sites = loadConfig().sites;

interface MailJson {
  site: string;
  day: string;
  status: 'sent' | 'skipped' | 'failed';
  messageId: string | null;
  to: string[];
  bcc: string[];
  subject: string;
  totals: { jobs: number; rows: number; failedRows: number };
}

const lastLine = (stdout: string) => JSON.parse(stdout.trimEnd().split('\n').pop()!) as MailJson;

let dir: string;
let state: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-e2e-mail-'));
  state = join(dir, 'state');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('CLI: rowfleet mail send', { timeout: 120_000 }, () => {
  it("sends the site's mail once with its own job's figures; a repeat is skipped; another site sees none of it", async () => {
    // Prepare: one kawasaki job (5 records, one with a wrong column count) on the local state
    const file = join(dir, 'kawasaki.csv');
    writeFileSync(file, 'id,name\n1,a\n2,b\n3,c,extra\n4,d\n5,e\n');
    const run = await rowfleet([
      'run',
      file,
      '--site',
      'kawasaki',
      '--processor',
      'json',
      '--json',
      '--state-dir',
      state,
      '--out',
      join(dir, 'out'),
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(lastJsonLine(run.stdout).state).toBe('PARTIAL');
    const day = localDay(new Date(), 'Asia/Tokyo');
    const kawasaki = sites.find((s) => s.id === 'kawasaki')!;

    // Act
    const first = await rowfleet([
      'mail',
      'send',
      '--site',
      'kawasaki',
      '--day',
      day,
      '--state-dir',
      state,
      '--json',
    ]);
    const again = await rowfleet([
      'mail',
      'send',
      '--site',
      'kawasaki',
      '--day',
      day,
      '--state-dir',
      state,
      '--json',
    ]);
    const sakai = await rowfleet([
      'mail',
      'send',
      '--site',
      'sakai',
      '--day',
      day,
      '--state-dir',
      state,
      '--json',
    ]);

    // Assess
    expect(first.code, first.stderr).toBe(0);
    const sent = lastLine(first.stdout);
    expect(sent).toEqual({
      site: 'kawasaki',
      day,
      status: 'sent',
      messageId: expect.stringMatching(/\S/),
      to: kawasaki.recipients.filter((r) => r.active).map((r) => r.address),
      bcc: [kawasaki.bcc],
      subject: `【Rowfleet】川崎 ご利用状況のお知らせ (${day})`,
      totals: { jobs: 1, rows: 4, failedRows: 1 },
    });
    expect(again.code, again.stderr).toBe(0);
    expect(lastLine(again.stdout)).toMatchObject({
      status: 'skipped',
      messageId: sent.messageId,
      totals: sent.totals,
    });
    expect(sakai.code, sakai.stderr).toBe(0);
    expect(lastLine(sakai.stdout)).toMatchObject({
      site: 'sakai',
      status: 'sent',
      to: ['sakai-ops@example.com', 'sakai-manager@example.com'],
      totals: { jobs: 0, rows: 0, failedRows: 0 },
    });
  });

  it('previews without sending, and refuses an unknown site or a malformed day with exit 1', async () => {
    // Act
    const preview = await rowfleet([
      'mail',
      'preview',
      '--site',
      'mizushima',
      '--day',
      '2026-11-30',
      '--state-dir',
      state,
    ]);
    const unknown = await rowfleet(['mail', 'send', '--site', 'nowhere', '--state-dir', state, '--json']);
    const badDay = await rowfleet([
      'mail',
      'send',
      '--site',
      'sakai',
      '--day',
      '2026-02-30',
      '--state-dir',
      state,
    ]);

    // Assess
    expect(preview.code, preview.stderr).toBe(0);
    expect(preview.stdout).toContain('Subject: 【Rowfleet】水島 ご利用状況のお知らせ (2026-11-30)');
    expect(preview.stdout).toContain('To: mizushima-ops@example.com');
    expect(preview.stdout).toContain('■ 2026年11月の合計');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown site "nowhere"/);
    expect(badDay.code).toBe(1);
    expect(badDay.stderr).toMatch(/--day/);
  });
});

describe('CLI: rowfleet dev', { timeout: 120_000 }, () => {
  it("fires every site's schedule through the handler, shows the mails in the viewer, and stops on SIGINT", async () => {
    // Prepare
    const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
    for (const k of Object.keys(env)) if (k.startsWith('AWS_ENDPOINT_URL')) delete env[k];
    const child = spawn(process.execPath, [ROWFLEET, 'dev', '--send-now', '--state-dir', join(dir, 'dev')], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const waitFor = async (test: () => boolean, what: string) => {
      const until = Date.now() + 60_000;
      while (!test()) {
        if (Date.now() > until || child.exitCode !== null)
          throw new Error(`no ${what}:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // Act
    await waitFor(() => (stdout.match(/^usage mail /gm) ?? []).length >= sites.length, 'usage mail lines');
    const viewer = /mail viewer: (\S+)/.exec(stdout)![1]!;
    const page = await fetch(viewer);
    // The viewer's page reads its store with the cookie its URL's key set (as a browser does); nothing else may.
    const cookie = page.headers.get('set-cookie')?.split(';')[0] ?? '';
    const refused = await fetch(new URL('store', viewer));
    const store = (await (await fetch(new URL('store', viewer), { headers: { cookie } })).json()) as {
      emails: { subject: string; destination: { to: string[]; bcc: string[] } }[];
    };
    child.kill('SIGINT');
    const code = await exited;

    // Assess
    expect(stdout).toMatch(/API: +http:\/\/127\.0\.0\.1:\d+/);
    for (const s of sites) expect(stdout).toMatch(new RegExp(`^ +${s.id} +rf_${s.id}_`, 'm'));
    expect(page.status).toBe(200);
    expect(refused.status).toBe(403);
    expect(store.emails).toHaveLength(sites.length);
    for (const s of sites) {
      const mail = store.emails.find((m) => m.subject.includes(`${s.name} ご利用状況`));
      expect(mail?.destination.to).toEqual(s.recipients.filter((r) => r.active).map((r) => r.address));
      expect(mail?.destination.bcc).toEqual([s.bcc]);
    }
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('Stopped.');
  });
});
