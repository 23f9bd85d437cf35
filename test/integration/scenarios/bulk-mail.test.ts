/**
 * The `mail` processor through the whole pipeline on the embedded emulators (SES: aws-ses-v2-local): jobs of
 * two sites at the same time on one table, one SES, one worker process. Every mail goes out once, from its own
 * site's sender with its own site's template; refused rows land in errors.csv with their own code; the zip holds
 * each sent row's SES message id.
 */
import { describe, expect, it } from 'vitest';
import { getSite } from '../../../config/index.ts';
import { startDirectJob } from '../../../core/intake/operations.ts';
import { finalizeJob } from '../../../core/finalize/finalize.ts';
import { runLaunchedWorkers } from '../../helpers/pipeline-jobs.ts';
import { RECORD_HEADER } from '../../../core/processors/mail.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../helpers/aws.ts';
import { parseErrorsCsv } from '../../helpers/jepsen.ts';
import { readZip, readZipText } from '../../helpers/zip.ts';
import { parseResultsCsv } from '../../helpers/results-csv.ts';
import { RESULT_COLUMNS } from '../../../core/finalize/results-sheet.ts';
import iconv from 'iconv-lite';
import { fetchEmulatorPage } from '../../../local/emulator-gate.ts';
import { reportQueueName } from '../../../core/jobs/keys.ts';

const aws = useTestAws();

interface StoredMail {
  messageId: string;
  from: string;
  destination: { to: string[] };
  subject: string;
  body: { text?: string; html?: string };
  headers?: { name: string; value: string }[];
}

/** Rows of an order export; row 4 has no valid address, row 6's name carries markup. */
function exportOf(site: string, rows: number): string {
  const lines = ['id,氏名,品目,数量,受注日,email'];
  for (let n = 1; n <= rows; n++) {
    const name = n === 6 ? '"<script>alert(1)</script> & Co"' : `${site}-客${n}`;
    const email = n === 4 ? 'not-an-address' : `${site}-${n}@example.com`;
    lines.push(`${site.toUpperCase()}-${n},${name},鋼板,${n},2026-11-2${n % 9},${email}`);
  }
  return lines.join('\n') + '\n';
}

describe('Pipeline: bulk mail (mail processor)', () => {
  it("sends every row once, from each site's own sender and template, with refused rows in errors.csv", async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const specs = [
      { site: 'sakai', rows: 12 },
      { site: 'kawasaki', rows: 9 },
    ];

    // Act: both jobs at once, their workers at once, then each finalize
    const views = await Promise.all(
      specs.map((s) =>
        startDirectJob(deps, s.site, Buffer.from(exportOf(s.site, s.rows)), {
          processor: 'mail',
          concurrency: 4,
        }),
      ),
    );
    await runLaunchedWorkers(deps, launcher);
    const finished = await Promise.all(views.map((v) => finalizeJob(deps, v.site, v.token)));
    const store = (await (await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`)).json()) as {
      emails: StoredMail[];
    };

    // Assess
    for (const [i, v] of views.entries()) {
      const { site, rows } = specs[i]!;
      const config = getSite(site);
      const job = await deps.jobs.get(site, v.token);
      expect(finished[i]!.state).toBe('PARTIAL');
      expect({ succeeded: job!.succeeded, failed: job!.failed }).toEqual({ succeeded: rows - 1, failed: 1 });
      const zip = await readZipText(await deps.objects.bytes(job!.resultKey!));
      expect(parseErrorsCsv(zip.get('errors.csv')!).map((e) => [e.n, e.code])).toEqual([
        [4, 'MAIL_INVALID_ADDRESS'],
      ]);
      const mails = store.emails.filter((m) =>
        m.headers?.find((h) => h.name === RECORD_HEADER)?.value.includes(v.token),
      );
      expect(mails).toHaveLength(rows - 1);
      for (const m of mails) {
        const n = Number(m.headers!.find((h) => h.name === RECORD_HEADER)!.value.split('#')[2]);
        expect(m.from).toBe(config.bulkMail!.from);
        expect(m.destination.to).toEqual([`${site}-${n}@example.com`]);
        expect(m.subject).toBe(`【${config.name}】ご注文 ${site.toUpperCase()}-${n} のご案内`);
        expect(JSON.parse(zip.get(`mail/${n}.json`)!)).toMatchObject({
          messageId: m.messageId,
          to: m.destination.to[0],
        });
        for (const other of specs.filter((s) => s.site !== site)) {
          expect(m.from).not.toContain(other.site);
          expect(m.body.text).not.toContain(getSite(other.site).name);
        }
      }
      const six = mails.find((m) => m.destination.to[0] === `${site}-6@example.com`)!;
      expect(six.body.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co 様');
      expect(six.body.text).toContain('<script>alert(1)</script> & Co 様');
    }
  });
});

describe('Pipeline: a mail file lacking a template column (PROCESSOR_FIELDS_MISSING)', () => {
  it('is REJECTED at the split, naming the column, with no queue, no worker and no mail; with it, it runs', async () => {
    // Prepare: kashima's export without 受注日, which its template names
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const full = exportOf('kashima', 5);
    const lacking = full
      .split('\n')
      .map((l) =>
        l
          .split(',')
          .filter((_, i) => i !== 4)
          .join(','),
      )
      .join('\n');

    // Act
    const refused = await startDirectJob(deps, 'kashima', Buffer.from(lacking), { processor: 'mail' });
    const queueAfterRefusal = await deps.queues.queueUrl(reportQueueName(deps.env.stage, refused.token));
    const launchesAfterRefusal = launcher.launches.length;
    const accepted = await startDirectJob(deps, 'kashima', Buffer.from(full), { processor: 'mail' });
    await runLaunchedWorkers(deps, launcher);
    const finished = await finalizeJob(deps, 'kashima', accepted.token);
    const store = (await (await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`)).json()) as {
      emails: StoredMail[];
    };
    const sentFor = (token: string) =>
      store.emails.filter((m) => m.headers?.find((h) => h.name === RECORD_HEADER)?.value.includes(token));

    // Assess
    expect(refused.state).toBe('REJECTED');
    expect(refused.error?.code).toBe('PROCESSOR_FIELDS_MISSING');
    expect(refused.error?.message).toContain('"受注日"');
    expect(refused.error?.message).not.toContain('"品目"');
    expect(queueAfterRefusal).toBeUndefined();
    expect(launchesAfterRefusal).toBe(0);
    expect(sentFor(refused.token)).toHaveLength(0);
    expect(finished.state).toBe('PARTIAL'); // row 4's address is invalid
    expect(sentFor(accepted.token)).toHaveLength(4);
  });
});

describe('Pipeline: results.csv, the sheet back', () => {
  for (const encoding of ['utf-8', 'cp932'] as const) {
    it(`lists every record of a ${encoding} file in order, its columns as sent, its status and its mail's id`, async () => {
      // Prepare: 7 rows of marifu's export; row 4's address is invalid, row 6 has a field too many (rejected)
      const launcher = new RecordingLauncher();
      const deps = testDeps(aws, { launcher });
      const lines = exportOf('marifu', 7).split('\n');
      lines[6] = `${lines[6]},余分`;
      lines[7] = lines[7]!.replace('鋼板', '=鋼板+1');
      const text = lines.join('\r\n');
      const body = encoding === 'cp932' ? iconv.encode(text, 'cp932') : Buffer.from(text, 'utf8');

      // Act
      const view = await startDirectJob(deps, 'marifu', body, { processor: 'mail' });
      await runLaunchedWorkers(deps, launcher);
      await finalizeJob(deps, 'marifu', view.token);
      const job = await deps.jobs.get('marifu', view.token);
      const zip = new Map(
        (await readZip(await deps.objects.bytes(job!.resultKey!))).map((e) => [e.name, e.data]),
      );
      const sheet = parseResultsCsv(zip.get('results.csv')!, encoding === 'cp932' ? 'cp932' : 'utf-8-bom');
      const manifest = JSON.parse(zip.get('manifest.json')!.toString('utf8')) as {
        counts: Record<string, number>;
      };

      // Assess: the header, then every record in order with its own columns (the formula guarded)
      expect(sheet.header).toEqual([...text.split('\r\n')[0]!.split(','), ...RESULT_COLUMNS]);
      expect(sheet.text).toMatch(/\r\n$/);
      expect(sheet.text.split('\r\n')).toHaveLength(9);
      expect(sheet.rows.map((r) => [r.record, r.line, r.status, r.code])).toEqual([
        [1, 2, 'succeeded', ''],
        [2, 3, 'succeeded', ''],
        [3, 4, 'succeeded', ''],
        [4, 5, 'failed', 'MAIL_INVALID_ADDRESS'],
        [5, 6, 'succeeded', ''],
        [6, 7, 'rejected', 'COLUMN_COUNT'],
        [7, 8, 'succeeded', ''],
      ]);
      const source = text
        .split('\r\n')
        .slice(1, 8)
        .map((l) => l.split(','));
      for (const [i, r] of sheet.rows.entries()) {
        const want =
          i === 5
            ? source[i]!.slice(0, 6)
            : i === 6
              ? source[i]!.map((f) => (f.startsWith('=') ? `'${f}` : f))
              : source[i]!;
        // Row 6 is marifu's markup row: its name was quoted in the file.
        expect(r.fields).toEqual(want.map((f) => f.replace(/^"(.*)"$/, '$1')));
      }
      expect(sheet.rows[5]!.message).toContain('余分');
      for (const r of sheet.rows.filter((x) => x.status === 'succeeded')) {
        expect(r.output).toBe(
          (JSON.parse(zip.get(`mail/${r.record}.json`)!.toString('utf8')) as { messageId: string }).messageId,
        );
      }
      const count = (s: string) => sheet.rows.filter((r) => r.status === s).length;
      expect([count('succeeded'), count('failed'), count('rejected')]).toEqual([
        manifest.counts.succeeded,
        manifest.counts.failed,
        manifest.counts.rejected,
      ]);
      expect(sheet.rows).toHaveLength(manifest.counts.total!);
    });
  }
});
