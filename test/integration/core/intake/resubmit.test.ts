/**
 * Fix and resubmit (core/intake/resubmit.ts) through core on the embedded emulators: the user's results.csv (or
 * errors.csv) edited as Excel saves it — CP932 or UTF-8 with a BOM, rows reordered and deleted, values corrected,
 * every cell quoted — runs the records that did not succeed in the job's next attempt with the corrected values;
 * no record's side effect happens twice; the job's latest results.csv shows the values each record last ran with
 * and the counts add up; the 422s and 409s; and where it meets cancel and retry.
 */
import iconv from 'iconv-lite';
import { parse } from 'csv-parse/sync';
import { describe, expect, it, vi } from 'vitest';
import { getJobView, startDirectJob } from '../../../../core/intake/operations.ts';
import { cancelJob } from '../../../../core/intake/cancel.ts';
import { retryFailedRecords } from '../../../../core/intake/rerun-failed.ts';
import { resubmitRecords } from '../../../../core/intake/resubmit.ts';
import { resultsDownload } from '../../../../core/intake/results-download.ts';
import { EffectClaims } from '../../../../core/effects/claims.ts';
import { neutraliseCell } from '../../../../core/source/write.ts';
import type { RowInput, RowProcessor } from '../../../../core/processors/index.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import { derivedTimings } from '../../../../config/index.ts';
import { reap } from '../../../../core/reaper/reaper.ts';
import { RecordingLauncher, TEST_TIMINGS, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { KilledError, withAdapters } from '../../../helpers/faults.ts';
import { readZip } from '../../../helpers/zip.ts';
import { parseResultsCsv } from '../../../helpers/results-csv.ts';
import { runAttempt } from '../../../helpers/pipeline-jobs.ts';

/**
 * `mailer`, a test processor with side effects: a record whose `email` has no `@` fails with a code of its own
 * (nothing sent, its claim settled FAILED); any other is "sent" once, and the ledger counts each record's sends.
 */
const ledger = vi.hoisted(() => ({ sent: new Map<number, number>(), values: new Map<number, string[]>() }));
vi.mock('../../../../core/processors/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../../core/processors/index.ts')>();
  const mailer: RowProcessor = {
    name: 'mailer',
    description: 'test processor with side effects',
    sideEffects: true,
    concurrency: 4,
    async process(row: RowInput) {
      await Promise.resolve();
      if (!row.fields[2]!.includes('@'))
        throw new real.RecordError('BAD_ADDRESS', `record ${row.n}: no address in "${row.fields[2]}"`);
      ledger.sent.set(row.n, (ledger.sent.get(row.n) ?? 0) + 1);
      ledger.values.set(row.n, [...row.fields]);
      return [{ name: `mails/${row.n}.json`, data: JSON.stringify({ messageId: `m-${row.n}` }) }];
    },
  };
  return {
    ...real,
    loadProcessor: (name: string) => Promise.resolve(name === 'mailer' ? mailer : real.loadProcessor(name)),
    processorInfo: (name: string, stage?: string) =>
      Promise.resolve(name === 'mailer' ? mailer : real.processorInfo(name, stage)),
  };
});

const aws = useTestAws();
const SITE = 'sakai';
type Deps = ReturnType<typeof testDeps>;

/** The job's latest results.csv as GET /jobs/{token}/results serves it (the object its URL names). */
async function latestSheet(deps: Deps, job: Job): Promise<Buffer> {
  const download = await resultsDownload(deps, SITE, job.token);
  expect(download.fileName).toBe(`${job.token}-results.csv`);
  return deps.objects.bytes(job.resultsSheetKey!);
}

/** Cells as Excel writes a CSV when every cell is quoted, CRLF, in `encoding`. */
function excelCsv(rows: readonly (readonly string[])[], encoding: 'cp932' | 'utf-8-bom'): Buffer {
  const text = rows.map((r) => r.map((c) => `"${c.replace(/"/g, '""')}"`).join(',')).join('\r\n') + '\r\n';
  return encoding === 'cp932'
    ? iconv.encode(text, 'cp932')
    : Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
}

/**
 * 12 records of `id,name,email`: 3 and 8 have no address (BAD_ADDRESS), 5 has a field too many (rejected by the
 * split), 10's name starts with `=` (the sheet guards it), 11 was claimed by a worker that died (IN_DOUBT).
 */
function mailFile(encoding: 'cp932' | 'utf-8'): Buffer {
  const lines = ['id,name,email'];
  for (let n = 1; n <= 12; n++) {
    const name = n === 10 ? '=SUM(1)' : `顧客 ${n}`;
    const email = n === 3 || n === 8 ? 'none' : `c${n}@example.jp`;
    lines.push(n === 5 ? `${n},${name},${email},extra` : `${n},${name},${email}`);
  }
  const text = lines.join('\r\n') + '\r\n';
  return encoding === 'cp932' ? iconv.encode(text, 'cp932') : Buffer.from(text, 'utf8');
}

describe('Function: resubmitRecords', () => {
  it.each([
    ['cp932', 'cp932'],
    ['utf-8', 'utf-8-bom'],
  ] as const)(
    "runs the corrected rows of a %s job's results.csv (sent back as %s, reordered, rows deleted) once, never a side effect twice",
    async (uploaded, sheetEncoding) => {
      // Prepare: the first run
      const launcher = new RecordingLauncher();
      const deps = testDeps(aws, { launcher });
      ledger.sent.clear();
      const view = await startDirectJob(deps, SITE, mailFile(uploaded), { processor: 'mailer' });
      const claims = new EffectClaims(aws.table, 14);
      await claims.claim(SITE, view.token, 11, 'dead-worker', 'host/1');
      const first = await runAttempt(deps, launcher, SITE, view.token, 0);
      expect(first).toMatchObject({ state: 'PARTIAL', succeeded: 8, failed: 3, rejected: 1 });
      const sheet = parseResultsCsv(await latestSheet(deps, first), sheetEncoding);
      expect(sheet.rows.filter((r) => r.status !== 'succeeded').map((r) => [r.record, r.status])).toEqual([
        [3, 'failed'],
        [5, 'rejected'],
        [8, 'failed'],
        [11, 'in_doubt'],
      ]);

      // Act: the user corrects 3, 5 and 8 in Excel, deletes most succeeded rows, sorts by name descending
      const byRecord = new Map(sheet.rows.map((r) => [r.record, r]));
      const edited = [3, 5, 8, 10, 11, 1].map((n) => {
        const r = byRecord.get(n)!;
        const fields = [...r.fields];
        if (n === 3 || n === 8) fields[2] = `fixed${n}@example.jp`;
        if (n === 5) fields[1] = '顧客 5 (直した)';
        return [...fields, String(r.record), String(r.line), r.status, r.code, r.message, r.output];
      });
      edited.reverse();
      const body = excelCsv([sheet.header, ...edited], sheetEncoding);
      const from = launcher.launches.length;
      const answer = await resubmitRecords(deps, SITE, view.token, body);
      const done = await runAttempt(deps, launcher, SITE, view.token, from);
      const after = parseResultsCsv(await latestSheet(deps, done), sheetEncoding);
      const zipSheet = (await readZip(await deps.objects.bytes(done.resultKey!))).find(
        (e) => e.name === 'results.csv',
      )!.data;

      // Assess: the answer
      expect(answer).toMatchObject({ token: view.token, attempt: 2, run: 3, notRunCount: 3 });
      expect(answer.notRun.map((r) => [r.record, r.status])).toEqual([
        [1, 'succeeded'],
        [10, 'succeeded'],
        [11, 'in_doubt'],
      ]);
      expect(answer.job).toMatchObject({ token: view.token, retryable: 0 });
      expect(answer.job.attempts.at(-1)).toMatchObject({ n: 2, records: 3 });
      // No record's side effect twice; the corrected ones sent once with their corrected values
      expect([...ledger.sent.values()].every((k) => k === 1)).toBe(true);
      expect([...ledger.sent.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
      expect(ledger.values.get(3)).toEqual(['3', '顧客 3', 'fixed3@example.jp']);
      expect(ledger.values.get(5)).toEqual(['5', '顧客 5 (直した)', 'c5@example.jp']);
      // The job: counts over its attempts add up (5, rejected then corrected, counts once, as succeeded)
      expect(done).toMatchObject({ state: 'PARTIAL', succeeded: 11, failed: 1, rejected: 0, attempt: 2 });
      expect(done.succeeded + done.failed + (done.rejected ?? 0)).toBe(done.totalRecords);
      // results.csv: every record in order, the values it last ran with, its latest outcome; the same as the zip's
      expect(zipSheet.equals(await latestSheet(deps, done))).toBe(true);
      expect(after.rows.map((r) => [r.record, r.status])).toEqual(
        Array.from({ length: 12 }, (_, i) => [i + 1, i === 10 ? 'in_doubt' : 'succeeded']),
      );
      expect(after.rows[2]!.fields).toEqual(['3', '顧客 3', 'fixed3@example.jp']);
      expect(after.rows[4]!.fields).toEqual(['5', '顧客 5 (直した)', 'c5@example.jp']);
      expect(after.rows[7]!.output).toBe('m-8');
      expect(after.rows[9]!.fields[1]).toBe(neutraliseCell('=SUM(1)'));
      expect(after.rows[0]!.output).toBe('m-1');
      const attempts = (await getJobView(deps, SITE, view.token)).attempts;
      expect(attempts.map((a) => [a.n, a.state, a.records, a.succeeded, a.failed])).toEqual([
        [1, 'PARTIAL', 11, 8, 3],
        [2, 'PARTIAL', 3, 3, 0],
      ]);
      // Sent again, nothing is left to run; a retry would run the file's first values: refused
      await expect(resubmitRecords(deps, SITE, view.token, body)).rejects.toMatchObject({
        code: 'NOTHING_TO_RESUBMIT',
        status: 409,
      });
      await expect(retryFailedRecords(deps, SITE, view.token)).rejects.toMatchObject({
        code: 'RETRY_AFTER_RESUBMIT',
        status: 409,
      });
    },
  );

  it("runs a cancelled job's records from its errors.csv, the row whose raw the split's rules reject as rejected", async () => {
    // Prepare: a job cancelled while queued (every record CANCELLED), its errors.csv edited
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    ledger.sent.clear();
    const view = await startDirectJob(deps, SITE, mailFile('utf-8'), { processor: 'mailer' });
    await cancelJob(deps, SITE, view.token);
    const cancelled = await runAttempt(deps, launcher, SITE, view.token, 0);
    expect(cancelled).toMatchObject({ state: 'CANCELLED', failed: 11, rejected: 1 });
    const zip = await readZip(await deps.objects.bytes(cancelled.resultKey!));
    const errors = parse(zip.find((e) => e.name === 'errors.csv')!.data.toString('utf8'), {
      bom: true,
    }) as string[][];
    const [header, ...rows] = errors;

    // Act: 3 and 8 get an address; 6's raw loses a field; 5 (rejected by the split) is fixed
    const edited = rows.map((r) => {
      const n = Number(r[1]);
      const raw =
        n === 3 || n === 8
          ? `${n},顧客 ${n},fixed${n}@example.jp`
          : n === 6
            ? '6,顧客 6'
            : n === 5
              ? '5,顧客 5,c5@example.jp'
              : r[4]!;
      return [r[0]!, r[1]!, r[2]!, r[3]!, raw];
    });
    const from = launcher.launches.length;
    const answer = await resubmitRecords(deps, SITE, view.token, excelCsv([header!, ...edited], 'utf-8-bom'));
    const done = await runAttempt(deps, launcher, SITE, view.token, from);
    const after = parseResultsCsv(await latestSheet(deps, done), 'utf-8-bom');

    // Assess
    expect(answer).toMatchObject({ attempt: 2, run: 12, notRunCount: 0 });
    expect([...ledger.sent.values()].every((k) => k === 1)).toBe(true);
    expect([...ledger.sent.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]);
    expect(done).toMatchObject({ state: 'PARTIAL', succeeded: 11, failed: 0, rejected: 1 });
    expect(after.rows[5]).toMatchObject({ record: 6, status: 'rejected', code: 'COLUMN_COUNT' });
    expect(after.rows[5]!.fields).toEqual(['6', '顧客 6', '']);
    expect(after.rows[7]).toMatchObject({
      record: 8,
      status: 'succeeded',
      fields: ['8', '顧客 8', 'fixed8@example.jp'],
    });
  });

  it('cancels a resubmitted attempt before it ran, then runs the same sheet again: every effect once, the corrected values', async () => {
    // Prepare: a first run with failures, its sheet corrected and sent back, that attempt cancelled at once
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    ledger.sent.clear();
    const view = await startDirectJob(deps, SITE, mailFile('cp932'), { processor: 'mailer' });
    const first = await runAttempt(deps, launcher, SITE, view.token, 0);
    const sheet = parseResultsCsv(await latestSheet(deps, first), 'cp932');
    const rows = sheet.rows
      .filter((r) => r.status !== 'succeeded')
      .map((r) => {
        const fields = [...r.fields];
        if (r.record === 3 || r.record === 8) fields[2] = `fixed${r.record}@example.jp`;
        return [...fields, String(r.record), String(r.line), r.status, r.code, r.message, r.output];
      });
    const body = excelCsv([sheet.header, ...rows], 'cp932');
    let from = launcher.launches.length;
    await resubmitRecords(deps, SITE, view.token, body);
    await cancelJob(deps, SITE, view.token);
    const cancelled = await runAttempt(deps, launcher, SITE, view.token, from);
    const between = parseResultsCsv(await latestSheet(deps, cancelled), 'cp932');

    // Act
    from = launcher.launches.length;
    const answer = await resubmitRecords(deps, SITE, view.token, body);
    const done = await runAttempt(deps, launcher, SITE, view.token, from);
    const after = parseResultsCsv(await latestSheet(deps, done), 'cp932');

    // Assess: the cancelled attempt's records keep an outcome of their own, then run once
    expect(cancelled).toMatchObject({ state: 'CANCELLED', attempt: 2 });
    // 5 (no claim) never ran: cancelled; 3's claim still says its first failure (nothing was sent)
    expect(between.rows[4]).toMatchObject({ status: 'cancelled', code: 'CANCELLED' });
    expect(between.rows[2]).toMatchObject({ status: 'failed', code: 'BAD_ADDRESS' });
    expect(answer).toMatchObject({ attempt: 3, run: 3, notRunCount: 0 });
    expect(done).toMatchObject({ state: 'SUCCEEDED', succeeded: 12, failed: 0, rejected: 0, attempt: 3 });
    expect([...ledger.sent.values()].every((k) => k === 1)).toBe(true);
    expect(ledger.sent.size).toBe(12);
    expect(after.rows[7]).toMatchObject({
      status: 'succeeded',
      fields: ['8', '顧客 8', 'fixed8@example.jp'],
    });
  });

  it('refuses a changed header, unknown record numbers, a job whose attempt runs (a retry), and one with no results', async () => {
    // Prepare: a finished job with failures, and its sheet
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const view = await startDirectJob(deps, SITE, mailFile('utf-8'), { processor: 'mailer' });
    const first = await runAttempt(deps, launcher, SITE, view.token, 0);
    const sheet = parseResultsCsv(await latestSheet(deps, first), 'utf-8-bom');
    const row = (r: (typeof sheet.rows)[number], record = String(r.record)) => [
      ...r.fields,
      record,
      String(r.line),
      r.status,
      r.code,
      r.message,
      r.output,
    ];
    const renamed = sheet.header.map((h) => (h === 'email' ? 'mail' : h));
    const unknown = [row(sheet.rows[2]!, '0'), row(sheet.rows[3]!, '99'), row(sheet.rows[4]!, 'abc')];
    const twice = [row(sheet.rows[2]!), row(sheet.rows[2]!)];
    const running = await startDirectJob(deps, SITE, mailFile('utf-8'), { processor: 'mailer' });

    // Act / Assess
    await expect(
      resubmitRecords(deps, SITE, view.token, excelCsv([renamed, row(sheet.rows[2]!)], 'utf-8-bom')),
    ).rejects.toMatchObject({
      code: 'RESUBMIT_HEADER_CHANGED',
      status: 422,
      message: expect.stringMatching(/missing: "email".*not the job's: "mail"/),
    });
    await expect(
      resubmitRecords(deps, SITE, view.token, excelCsv([sheet.header, ...unknown], 'utf-8-bom')),
    ).rejects.toMatchObject({
      code: 'RESUBMIT_UNKNOWN_RECORDS',
      status: 422,
      message: expect.stringMatching(/^3 rows .*"0" \(line 2\), "99" \(line 3\), "abc" \(line 4\)/),
    });
    await expect(
      resubmitRecords(deps, SITE, view.token, excelCsv([sheet.header, ...twice], 'utf-8-bom')),
    ).rejects.toMatchObject({
      code: 'RESUBMIT_UNKNOWN_RECORDS',
      message: expect.stringContaining('3 (again, line 3)'),
    });
    await expect(
      resubmitRecords(deps, SITE, running.token, excelCsv([sheet.header, row(sheet.rows[2]!)], 'utf-8-bom')),
    ).rejects.toMatchObject({ code: 'ATTEMPT_RUNNING', status: 409 });
    // While a retry's attempt of the job runs
    await cancelJob(deps, SITE, running.token);
    await runAttempt(deps, launcher, SITE, running.token, 0);
    await retryFailedRecords(deps, SITE, running.token);
    await expect(
      resubmitRecords(deps, SITE, running.token, excelCsv([sheet.header, row(sheet.rows[2]!)], 'utf-8-bom')),
    ).rejects.toMatchObject({
      code: 'ATTEMPT_RUNNING',
      status: 409,
      message: expect.stringContaining('attempt 2'),
    });
    await expect(resultsDownload(deps, SITE, running.token)).resolves.toMatchObject({ attempt: 1 });
    await expect(
      resubmitRecords(
        deps,
        'kashima',
        view.token,
        excelCsv([sheet.header, row(sheet.rows[2]!)], 'utf-8-bom'),
      ),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

/** A job of mailFile's 12 records cancelled while queued (every record CANCELLED): its errors.csv, header first. */
async function cancelledErrors(deps: Deps, launcher: RecordingLauncher) {
  const view = await startDirectJob(deps, SITE, mailFile('utf-8'), { processor: 'mailer' });
  await cancelJob(deps, SITE, view.token);
  const cancelled = await runAttempt(deps, launcher, SITE, view.token, 0);
  expect(cancelled).toMatchObject({ state: 'CANCELLED', failed: 11, rejected: 1 });
  const zip = await readZip(await deps.objects.bytes(cancelled.resultKey!));
  const [header, ...rows] = parse(zip.find((e) => e.name === 'errors.csv')!.data.toString('utf8'), {
    bom: true,
  }) as string[][];
  return { token: view.token, header: header!, rows };
}

/** A clock just past the stage's grace for an attempt's sender. */
const pastGrace = () =>
  new Date(Date.now() + (derivedTimings(TEST_TIMINGS).attemptSendGraceSeconds + 1) * 1000);

describe('Function: reap (a resubmission whose sender died before sending it)', () => {
  it("sends again the resubmission's own chunks, with the corrected values, when its caller died at the first send", async () => {
    // Prepare: the errors.csv of a cancelled job, 3 and 8 corrected; the caller dies at its first chunk send
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    ledger.sent.clear();
    const job = await cancelledErrors(deps, launcher);
    const edited = job.rows.map((r) => {
      const n = Number(r[1]);
      const raw = n === 3 || n === 8 ? `${n},顧客 ${n},fixed${n}@example.jp` : r[4]!;
      return [r[0]!, r[1]!, r[2]!, r[3]!, raw];
    });
    const dying = withAdapters(deps, {
      queues: {
        before: (method) => {
          if (method === 'sendBatch') throw new KilledError('the upload function ran out of memory');
        },
      },
    });
    const body = excelCsv([job.header, ...edited], 'utf-8-bom');
    await expect(resubmitRecords(dying, SITE, job.token, body)).rejects.toBeInstanceOf(KilledError);
    const from = launcher.launches.length;

    // Act
    const report = await reap(deps, { now: pastGrace() });
    const done = await runAttempt(deps, launcher, SITE, job.token, from);
    const after = parseResultsCsv(await latestSheet(deps, done), 'utf-8-bom');

    // Assess
    expect(report.attemptsResent).toEqual([
      { site: SITE, token: job.token, attempt: 2, chunks: done.totalChunks },
    ]);
    expect(done).toMatchObject({ state: 'PARTIAL', succeeded: 11, failed: 0, rejected: 1, attempt: 2 });
    expect(done.succeeded + done.failed + (done.rejected ?? 0)).toBe(done.totalRecords);
    expect([...ledger.sent.values()].every((k) => k === 1)).toBe(true);
    expect([...ledger.sent.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]);
    expect(after.rows[7]).toMatchObject({
      record: 8,
      status: 'succeeded',
      fields: ['8', '顧客 8', 'fixed8@example.jp'],
    });
  });

  it('asks again for the finalize of a resubmission with no chunk (every row rejected) whose caller died at once', async () => {
    // Prepare: every row's raw loses a field (all rejected: no chunk); the caller dies right after the write
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const job = await cancelledErrors(deps, launcher);
    const edited = job.rows.map((r) => [r[0]!, r[1]!, r[2]!, r[3]!, `${r[1]},only two`]);
    const dying = withAdapters(deps, {
      jobs: {
        before: (method) => {
          if (method === 'transition') throw new KilledError('the upload function timed out');
        },
      },
    });
    const body = excelCsv([job.header, ...edited], 'utf-8-bom');
    await expect(resubmitRecords(dying, SITE, job.token, body)).rejects.toBeInstanceOf(KilledError);
    const stuck = (await deps.jobs.get(SITE, job.token))!;

    // Act
    const report = await reap(deps, { now: pastGrace() });
    const done = await runAttempt(deps, launcher, SITE, job.token, launcher.launches.length);

    // Assess
    expect(stuck).toMatchObject({ state: 'QUEUED', attempt: 2, totalChunks: 0 });
    expect(report.attemptsResent).toEqual([{ site: SITE, token: job.token, attempt: 2, chunks: 0 }]);
    expect(done).toMatchObject({ succeeded: 0, failed: 0, rejected: 12, totalRecords: 12, attempt: 2 });
    expect(done.finishedAt).toBeDefined();
  });
});
