import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { localDay } from '../../core/usage/days.ts';
import { lastJsonLine, rowfleet, rowfleetStarter, runArgs } from '../helpers/cli.ts';
import { tempDirs } from '../helpers/temp.ts';

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

const newDir = tempDirs();
const start = rowfleetStarter();

/** `rowfleet mail <verb> --site S [--day D] --state-dir <this file's state> [more]`. */
const mailCli = (verb: 'send' | 'preview', site: string, day: string | undefined, ...more: string[]) =>
  rowfleet(['mail', verb, '--site', site, ...(day ? ['--day', day] : []), '--state-dir', state, ...more]);
beforeAll(async () => {
  dir = await newDir('rowfleet-e2e-mail-');
  state = join(dir, 'state');
});

describe('CLI: rowfleet mail send', { timeout: 120_000 }, () => {
  it("sends the site's mail once with its own job's figures; a repeat is skipped; another site sees none of it", async () => {
    // Prepare: one kawasaki job (5 records, one with a wrong column count) on the local state
    const file = join(dir, 'kawasaki.csv');
    writeFileSync(file, 'id,name\n1,a\n2,b\n3,c,extra\n4,d\n5,e\n');
    const run = await rowfleet(
      runArgs(file, { site: 'kawasaki', processor: 'json', stateDir: state, out: join(dir, 'out') }),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(lastJsonLine(run.stdout).state).toBe('PARTIAL');
    const day = localDay(new Date(), 'Asia/Tokyo');
    const kawasaki = sites.find((s) => s.id === 'kawasaki')!;

    // Act
    const first = await mailCli('send', 'kawasaki', day, '--json');
    const again = await mailCli('send', 'kawasaki', day, '--json');
    const sakai = await mailCli('send', 'sakai', day, '--json');

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
    const preview = await mailCli('preview', 'mizushima', '2026-11-30');
    const unknown = await mailCli('send', 'nowhere', undefined, '--json');
    const badDay = await mailCli('send', 'sakai', '2026-02-30');

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
    const { child, out, exited } = start(['dev', '--send-now', '--state-dir', join(dir, 'dev')]);
    const waitFor = async (test: () => boolean, what: string) => {
      const until = Date.now() + 60_000;
      while (!test()) {
        if (Date.now() > until || child.exitCode !== null)
          throw new Error(`no ${what}:\n${out.stdout}\n${out.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // Act
    await waitFor(
      () => (out.stdout.match(/^usage mail /gm) ?? []).length >= sites.length,
      'usage mail lines',
    );
    const viewer = /mail viewer: (\S+)/.exec(out.stdout)![1]!;
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
    expect(out.stdout).toMatch(/API: +http:\/\/127\.0\.0\.1:\d+/);
    for (const s of sites) expect(out.stdout).toMatch(new RegExp(`^ +${s.id} +rf_${s.id}_`, 'm'));
    expect(page.status).toBe(200);
    expect(refused.status).toBe(403);
    expect(store.emails).toHaveLength(sites.length);
    for (const s of sites) {
      const mail = store.emails.find((m) => m.subject.includes(`${s.name} ご利用状況`));
      expect(mail?.destination.to).toEqual(s.recipients.filter((r) => r.active).map((r) => r.address));
      expect(mail?.destination.bcc).toEqual([s.bcc]);
    }
    expect(code, out.stderr).toBe(0);
    expect(out.stdout).toContain('Stopped.');
  });
});
