/**
 * `npm run bench -- --scenario mail`: 10,000 rows through the `mail` processor on the embedded runtime, into the
 * embedded SES, at the local stage's sending rate (`mail.ratePerSecond`, 200/s). Prints, measured in one run:
 *  1. the duration (upload → zip downloaded) and the mails per second;
 *  2. the most mails the SES took in any one-second span (sliding, by their arrival in ms), which must not pass
 *     the rate by more than 10 %, and the most in one calendar second;
 *  3. duplicates (two mails for one row or one address), which must be 0, and rows not sent;
 *  4. DynamoDB requests per mail of the at-most-once claims and of the shared rate limiter (from the workers'
 *     own counts) and what they cost per million rows at on-demand prices.
 * The last stdout line is the figures as JSON. Options: --records N, --workers N, --concurrency N, --dir DIR.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getStage } from '../config/index.ts';
import { LocalRuntime } from '../local/runtime.ts';
import type { StoredMail } from '../local/emulators/ses.ts';
import { RECORD_HEADER } from '../core/processors/mail.ts';
import { writeSampleCsv } from '../cli/gen-data.ts';
import { runJob } from '../cli/run-job.ts';
import { fetchEmulatorPage } from '../local/emulator-gate.ts';

/**
 * DynamoDB on-demand prices in ap-northeast-1 (Tokyo), USD per million request units, as published on the AWS
 * DynamoDB on-demand pricing page after the November 2024 reduction (us-east-1: 0.625 / 0.125). A write of an
 * item up to 1 KB is one write unit; a strongly consistent read up to 4 KB one read unit.
 */
const PRICE_PER_MILLION = { write: 0.715, read: 0.1425 };

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    records: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string' },
    dir: { type: 'string' },
  },
});
const records = Number(values.records);
const workers = Number(values.workers);
const dir = join(values.dir ?? join(tmpdir(), 'rowfleet-bench'), 'mail');
const say = (s: string) => process.stderr.write(s + '\n');
const SITE = 'sakai';

await mkdir(dir, { recursive: true });
const file = join(dir, `recipients-${records}.csv`);
await writeSampleCsv(file, records, 'utf-8', { email: true });
const stateDir = join(dir, 'state');
rmSync(stateDir, { recursive: true, force: true });
const rt = await LocalRuntime.start({ stateDir });
const rate = getStage(rt.stage).mail.ratePerSecond;
say(`mail: ${records} rows, ${workers} workers, SES rate ${rate}/s…`);
let summary: Awaited<ReturnType<typeof runJob>>;
let mails: StoredMail[];
try {
  summary = await runJob({
    apiUrl: rt.apiUrl,
    apiToken: await rt.tokenFor(SITE),
    file,
    processor: 'mail',
    workers,
    request: values.concurrency ? { concurrency: Number(values.concurrency) } : {},
    outDir: join(dir, 'out'),
    directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
    progress: true,
  });
  const store = (await (await fetchEmulatorPage(new URL('store', rt.endpoints.ses!))).json()) as {
    emails: StoredMail[];
  };
  mails = store.emails.filter((m) =>
    m.headers?.some((h) => h.name === RECORD_HEADER && h.value.includes(summary.token)),
  );
} finally {
  await rt.stop();
}

// Rate: by the SES's arrival times (ms), in any sliding one-second span and per calendar second.
const arrivals = mails.map((m) => m.atMs ?? m.at * 1000).sort((a, b) => a - b);
let sliding = 0;
for (let i = 0, j = 0; i < arrivals.length; i++) {
  while (arrivals[i]! - arrivals[j]! >= 1000) j++;
  sliding = Math.max(sliding, i - j + 1);
}
const perSecond = new Map<number, number>();
for (const t of arrivals) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
const calendar = Math.max(0, ...perSecond.values());
const rowsMailed = mails.map((m) => m.headers!.find((h) => h.name === RECORD_HEADER)!.value);
const duplicates =
  rowsMailed.length -
  new Set(rowsMailed).size +
  (mails.length - new Set(mails.map((m) => m.destination.to.join())).size);

// DynamoDB requests, as the workers counted them ("worker done" lines of the job's worker log).
const totals = { claimWrites: 0, claimReads: 0, limiterWrites: 0 };
for (const f of readdirSync(join(stateDir, 'logs')).filter((f) => f.includes(summary.token))) {
  for (const line of readFileSync(join(stateDir, 'logs', f), 'utf8').split('\n')) {
    if (!line.includes('"worker done"')) continue;
    const w = JSON.parse(line) as {
      claims?: { writes: number; reads: number };
      limiter?: { writes: number };
    };
    totals.claimWrites += w.claims?.writes ?? 0;
    totals.claimReads += w.claims?.reads ?? 0;
    totals.limiterWrites += w.limiter?.writes ?? 0;
  }
}
const perMail = (n: number) => +(n / Math.max(1, mails.length)).toFixed(3);
const costPerMillion = (writes: number, reads: number) =>
  +(((writes * PRICE_PER_MILLION.write + reads * PRICE_PER_MILLION.read) / Math.max(1, records)) * 1).toFixed(
    3,
  );
const result = {
  scenario: 'mail',
  records,
  workers,
  ratePerSecond: rate,
  state: summary.state,
  seconds: +summary.seconds.toFixed(2),
  mailsPerSecond: Math.round(mails.length / summary.seconds),
  mails: mails.length,
  sent: summary.rows.succeeded,
  notSent: summary.rows.failed + summary.rows.rejected,
  maxInAnySecond: sliding,
  maxInACalendarSecond: calendar,
  overRate: +(sliding / rate - 1).toFixed(3),
  duplicates,
  claimWritesPerMail: perMail(totals.claimWrites),
  claimReadsPerMail: perMail(totals.claimReads),
  limiterWritesPerMail: perMail(totals.limiterWrites),
  claimsUsdPerMillion: costPerMillion(totals.claimWrites, totals.claimReads),
  limiterUsdPerMillion: costPerMillion(totals.limiterWrites, 0),
};
const check = (ok: boolean) => (ok ? 'ok' : 'MISSED');
console.log(`
Rowfleet benchmark: mail — ${records.toLocaleString('en')} rows, ${workers} workers, SES rate ${rate}/s, ${cpus().length} cores, node ${process.version}
1. duration          ${result.seconds} s (upload → zip downloaded), ${result.mailsPerSecond} mails/s; ${result.state}, ${result.sent} sent, ${result.notSent} not
2. rate              at most ${result.maxInAnySecond} mails in any one second (sliding), ${result.maxInACalendarSecond} in a calendar second; limit ${rate} + 10 %  ${check(sliding <= rate * 1.1)}
3. duplicates        ${result.duplicates}   target 0  ${check(duplicates === 0)}
4. DynamoDB / mail   claims ${result.claimWritesPerMail} writes + ${result.claimReadsPerMail} reads, limiter ${result.limiterWritesPerMail} writes; per million rows: claims $${result.claimsUsdPerMillion}, limiter $${result.limiterUsdPerMillion} (on-demand, ap-northeast-1)
${JSON.stringify(result)}`);
