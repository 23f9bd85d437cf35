/**
 * results.csv from the rows the workers wrote into their parts (core/finalize/sheet-from-parts.ts) is byte for
 * byte the sheet the finalize wrote by reading the job's source again (results-sheet.ts resultsCsv): the same job
 * story — split rejections inside a chunk and a chunk's worth of them between chunks, failures, a record in doubt,
 * a guarded cell, quotes and line breaks, a resubmission cancelled and one run, a job cancelled before it ran and
 * then retried, one cancelled after its first chunk, one whose chunks were all given up, one of the json processor — is run once as the finalize does it and once with every sheet taken from the source, in CP932 and UTF-8,
 * and each attempt's sheets (the object beside the zip and the zip's entry) are compared.
 */
import iconv from 'iconv-lite';
import { describe, expect, it, vi } from 'vitest';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { cancelJob } from '../../../../core/intake/cancel.ts';
import { retryFailedRecords } from '../../../../core/intake/rerun-failed.ts';
import { resubmitRecords } from '../../../../core/intake/resubmit.ts';
import { EffectClaims } from '../../../../core/effects/claims.ts';
import type { RowInput, RowProcessor } from '../../../../core/processors/index.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { readZip } from '../../../helpers/zip.ts';
import { parseResultsCsv } from '../../../helpers/results-csv.ts';
import { drainFinalizeRequests, runAttempt } from '../../../helpers/pipeline-jobs.ts';
import { pastLastAttempt } from '../../../helpers/faults.ts';
import { JobStore } from '../../../../core/jobs/store.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';

/** `source`: every finalize takes its sheet from the source; `used`: what sheetFromParts answered, in order. */
const mode = vi.hoisted(() => ({ source: false, used: [] as boolean[] }));
vi.mock('../../../../core/finalize/sheet-from-parts.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../../core/finalize/sheet-from-parts.ts')>();
  return {
    ...real,
    sheetFromParts: (...args: Parameters<typeof real.sheetFromParts>) => {
      const used = !mode.source && real.sheetFromParts(...args);
      mode.used.push(used);
      return used;
    },
  };
});

/** A processor with side effects: no `@` in `email` fails with its own code; otherwise it answers a message id. */
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

/**
 * 15 records (or more, plain) of `id,name,email` in chunks of 3: 3 and 8 have no address, 4–6 a field too many (a chunk of
 * rejections only: no chunk holds them), 14 too (inside a chunk), 10's name is a formula, 11 is in doubt (claimed by
 * a worker that died), 12's name has quotes and a line break, 9's a character CP932 has not.
 */
function sheetFile(encoding: 'cp932' | 'utf-8', records = 15): Buffer {
  const lines = ['id,name,email'];
  for (let n = 1; n <= records; n++) {
    const name =
      n === 10 ? '=SUM(1)' : n === 12 ? '"顧客 ""12""\r\n二行目"' : n === 9 ? '顧客 9 😀' : `顧客 ${n}`;
    const email = n === 3 || n === 8 ? 'none' : `c${n}@example.jp`;
    lines.push([4, 5, 6, 14].includes(n) ? `${n},${name},${email},extra` : `${n},${name},${email}`);
  }
  const text = lines.join('\r\n') + '\r\n';
  return encoding === 'cp932' ? iconv.encode(text, 'cp932') : Buffer.from(text, 'utf8');
}

/** Cells as Excel writes a CSV when every cell is quoted, CRLF, in `encoding`. */
function excelCsv(rows: readonly (readonly string[])[], encoding: 'cp932' | 'utf-8-bom'): Buffer {
  const text = rows.map((r) => r.map((c) => `"${c.replace(/"/g, '""')}"`).join(',')).join('\r\n') + '\r\n';
  return encoding === 'cp932'
    ? iconv.encode(text, 'cp932')
    : Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
}

/** An attempt's two results.csv: the object beside the zip, the zip's entry. */
async function sheetsOf(deps: Deps, job: Job): Promise<{ state: string; beside: Buffer; inZip: Buffer }> {
  const entries = await readZip(await deps.objects.bytes(job.resultKey!));
  return {
    state: job.state,
    beside: await deps.objects.bytes(job.resultsSheetKey!),
    inZip: entries.find((e) => e.name === 'results.csv')!.data,
  };
}

/**
 * A sheet's bytes as a string of as many characters (latin1), the time 11's claim was made (in its IN_DOUBT
 * message, ASCII) put aside: the two runs of the story claim it at two moments.
 */
const bytesOf = (sheet: Buffer) =>
  sheet.toString('latin1').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<claimed at>');

/** The whole story, each attempt's sheets in order. */
async function story(uploaded: 'cp932' | 'utf-8', sheetEncoding: 'cp932' | 'utf-8-bom') {
  const launcher = new RecordingLauncher();
  const deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 3 } });
  const sheets: Awaited<ReturnType<typeof sheetsOf>>[] = [];
  const view = await startDirectJob(deps, SITE, sheetFile(uploaded), { processor: 'mailer' });
  await new EffectClaims(aws.table, 14).claim(SITE, view.token, 11, 'dead-worker', 'host/1');
  const first = await runAttempt(deps, launcher, SITE, view.token, 0);
  sheets.push(await sheetsOf(deps, first));
  // Corrected in Excel and sent back: cancelled before it ran, then sent again and run
  const sheet = parseResultsCsv(sheets.at(-1)!.beside, sheetEncoding);
  const rows = sheet.rows
    .filter((r) => r.status !== 'succeeded')
    .map((r) => {
      const fields = r.status === 'rejected' ? r.fields.slice(0, 3) : [...r.fields];
      if (r.record === 3 || r.record === 8) fields[2] = `fixed${r.record}@example.jp`;
      return [...fields, String(r.record), String(r.line), r.status, r.code, r.message, r.output];
    });
  const body = excelCsv([sheet.header, ...rows], sheetEncoding);
  let from = launcher.launches.length;
  await resubmitRecords(deps, SITE, view.token, body);
  await cancelJob(deps, SITE, view.token);
  sheets.push(await sheetsOf(deps, await runAttempt(deps, launcher, SITE, view.token, from)));
  from = launcher.launches.length;
  await resubmitRecords(deps, SITE, view.token, body);
  sheets.push(await sheetsOf(deps, await runAttempt(deps, launcher, SITE, view.token, from)));
  // Another job, cancelled before its workers ran, then retried: its cancelled records run
  from = launcher.launches.length;
  const other = await startDirectJob(deps, SITE, sheetFile(uploaded), { processor: 'mailer' });
  await cancelJob(deps, SITE, other.token);
  sheets.push(await sheetsOf(deps, await runAttempt(deps, launcher, SITE, other.token, from)));
  from = launcher.launches.length;
  await retryFailedRecords(deps, SITE, other.token);
  sheets.push(await sheetsOf(deps, await runAttempt(deps, launcher, SITE, other.token, from)));
  // A third, cancelled after its worker's first chunk was counted: counted parts and chunks never run, in turn
  const stopWorker = new AbortController();
  const jobs = new (class extends JobStore {
    override async countChunk(...args: Parameters<JobStore['countChunk']>) {
      const r = await super.countChunk(...args);
      stopWorker.abort();
      return r;
    }
  })(aws.table);
  const stopping = { ...deps, jobs };
  const third = await startDirectJob(stopping, SITE, sheetFile(uploaded, 90), {
    processor: 'mailer',
    workers: 1,
  });
  await runWorker(stopping, { site: SITE, token: third.token, waitSeconds: 0, signal: stopWorker.signal });
  const ran = (await deps.jobs.get(SITE, third.token))!;
  expect([ran.chunksDone > 0, ran.chunksDone < ran.totalChunks!]).toEqual([true, true]);
  await cancelJob(stopping, SITE, third.token);
  await finalizeJob(stopping, SITE, third.token);
  sheets.push(await sheetsOf(deps, (await deps.jobs.get(SITE, third.token))!));
  // A fourth whose every chunk is given up (each receive past its attempts): 2's claim done, 7's failed
  const fourth = await startDirectJob(deps, SITE, sheetFile(uploaded), { processor: 'mailer', workers: 1 });
  const claims = new EffectClaims(aws.table, 14);
  for (const n of [2, 7]) await claims.claim(SITE, fourth.token, n, `c${n}`, 'host/7');
  await claims.done(SITE, fourth.token, 2, 'c2', [{ name: 'mails/2.json', data: '{"messageId":"m-2"}' }]);
  await claims.failed(SITE, fourth.token, 7, 'c7', 'BAD_ADDRESS', 'refused before');
  const lastAttempt = pastLastAttempt(deps);
  await runWorker(lastAttempt, { site: SITE, token: fourth.token, waitSeconds: 0, idlePolls: 2 });
  await drainFinalizeRequests(deps);
  await finalizeJob(deps, SITE, fourth.token);
  sheets.push(await sheetsOf(deps, (await deps.jobs.get(SITE, fourth.token))!));
  // A fifth with the json processor: its outputs' names, told without reading its entries back
  from = launcher.launches.length;
  const plain = await startDirectJob(deps, SITE, sheetFile(uploaded), { processor: 'json' });
  sheets.push(await sheetsOf(deps, await runAttempt(deps, launcher, SITE, plain.token, from)));
  return sheets;
}

describe('Function: sheetFromParts', () => {
  it.each([
    ['cp932', 'cp932'],
    ['utf-8', 'utf-8-bom'],
  ] as const)(
    'writes the bytes the source gave for a %s job through resubmission, cancel, retry and split rejections',
    async (uploaded, sheetEncoding) => {
      // Prepare: the story with every sheet from the source
      mode.source = true;
      const fromSource = await story(uploaded, sheetEncoding);

      // Act: the same story as the finalize does it
      mode.source = false;
      mode.used = [];
      const fromParts = await story(uploaded, sheetEncoding);

      // Assess: the first attempts took their sheet from the parts (and the stopped ones the ranges of the chunks
      // never counted; the attempts merged over one before never ask: theirs is the source's), and every sheet is
      // the same bytes both ways (beside the zip and in it)
      expect(mode.used).toEqual([true, true, true, true, true]);
      expect(fromParts.map((s) => s.state)).toEqual([
        'PARTIAL',
        'CANCELLED',
        'PARTIAL',
        'CANCELLED',
        'PARTIAL',
        'CANCELLED',
        'PARTIAL',
        'PARTIAL',
      ]);
      expect(parseResultsCsv(fromParts[6]!.beside, sheetEncoding).rows.map((r) => r.code)).toEqual([
        'CHUNK_FAILED',
        '',
        'CHUNK_FAILED',
        ...['COLUMN_COUNT', 'COLUMN_COUNT', 'COLUMN_COUNT', 'BAD_ADDRESS'],
        ...Array.from({ length: 6 }, () => 'CHUNK_FAILED'),
        'COLUMN_COUNT',
        'CHUNK_FAILED',
      ]);
      for (const [i, s] of fromParts.entries()) {
        expect(s.beside.equals(s.inZip)).toBe(true);
        expect(bytesOf(s.beside)).toBe(bytesOf(fromSource[i]!.beside));
      }
      // And it is the sheet the story wants: every record in order, the rejections between chunks included
      const first = parseResultsCsv(fromParts[0]!.beside, sheetEncoding);
      expect(first.rows.map((r) => [r.record, r.status])).toEqual([
        [1, 'succeeded'],
        [2, 'succeeded'],
        [3, 'failed'],
        [4, 'rejected'],
        [5, 'rejected'],
        [6, 'rejected'],
        [7, 'succeeded'],
        [8, 'failed'],
        [9, 'succeeded'],
        [10, 'succeeded'],
        [11, 'in_doubt'],
        [12, 'succeeded'],
        [13, 'succeeded'],
        [14, 'rejected'],
        [15, 'succeeded'],
      ]);
      expect(first.rows[11]!.fields[1]).toBe('顧客 "12"\r\n二行目');
      expect(first.rows[0]!.output).toBe('m-1');
      expect(parseResultsCsv(fromParts[7]!.beside, sheetEncoding).rows[0]!.output).toMatch(/\.json$/);
    },
  );
});
