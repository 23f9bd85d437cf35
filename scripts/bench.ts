/**
 * `npm run bench`: measures, in one run on the same generated file,
 *  1. the split's validation pass (read → decode → scan → chunk, in this process) for the UTF-8 file and a
 *     CP932 copy, against anchors of the same bytes: read + UTF-8 decode, iconv-lite's CP932 decode alone,
 *     raw csv-parse; and the split phase of the end-to-end run,
 *  2. SQS requests per 1,000 records (counted by the emulator, every process included),
 *  3. end-to-end records/s on the embedded runtime vs a single-process floor, and each phase's seconds,
 *  4. peak RSS of the split and of the finalize (each function runs in its own process here),
 *  5. the core-seconds the machine was busy (all processes, Linux /proc/stat) during the floor and the end-to-end run,
 *     and the end-to-end run's own per process kind (split, workers, finalize, emulators, runtime: scripts/bench-cpu.ts)
 *     against the floor's process: ownCoreSecondsVsFloor = (split + workers + finalize) ÷ the floor that writes the
 *     job's outputs (results.csv included, checked byte for byte: floorSheetSameAsJob), and
 *     ownCoreSecondsVsEntriesFloor against a floor of the zip's entries only (every figure until 2026-12-07).
 * Options: --records N (default 1,000,000), --dir DIR (work directory, default $TMPDIR/rowfleet-bench),
 * --tracing file|off (the runtime's span store, default file as a user's local runtime has it; off measures
 * tracing's cost, and the phases then come from the job's timestamps);
 * 6. the start-up of a small job: `npx rowfleet run` of the README's 10-row sample, no runtime running, spawn →
 *    receivedAt, three runs (scripts/bench-startup.ts).
 * --scenario io|mail|startup runs scripts/bench-io.ts, bench-mail.ts or bench-startup.ts instead.
 */
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { once } from 'node:events';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { parse } from 'csv-parse';
import yauzl from 'yauzl';
import iconv from 'iconv-lite';
import { getStage } from '../config/index.ts';
import { scanRecordBatches } from '../core/source/scan.ts';
import { decodeToUtf8 } from '../core/source/decode.ts';
import { Chunker } from '../core/messages/chunk.ts';
import { reportQueueName } from '../core/jobs/keys.ts';
import { jsonProcessor } from '../core/processors/json.ts';
import { DeflatedEntry, FINALIZE_ENTRIES, ZipWriter } from '../core/messages/zip.ts';
import { errorsCsv } from '../core/messages/part.ts';
import { encodeSheetText, RESULT_COLUMNS, shownNames } from '../core/messages/results-row.ts';
import { csvTextLine } from '../core/source/write.ts';
import { SheetRows } from '../core/work/sheet-rows.ts';
import { prepareWorkers } from '../local/launcher.ts';
import { LocalRuntime } from '../local/runtime.ts';
import type { QueueStats } from '../local/emulators/sqs.ts';
import { writeSampleCsv } from '../cli/gen-data.ts';
import { runJob } from '../cli/run-job.ts';
import { commandBundle } from '../cli/command-bundle.mjs';
import { measureStartup } from './bench-startup.ts';
import { fetchEmulatorPage } from '../local/emulator-gate.ts';
import { ownCoreSeconds, processCoreSeconds, startCpuCount } from './bench-cpu.ts';
import { benchTracing, jobPhases } from './bench-spans.ts';

// Other scenarios live in their own modules: `npm run bench -- --scenario io|mail|startup` (default: split, below).
const scenario = parseArgs({ options: { scenario: { type: 'string' } }, strict: false }).values.scenario;
if (scenario === 'io' || scenario === 'mail' || scenario === 'startup') {
  await import(`./bench-${scenario}.ts`);
  process.exit(0);
}
if (scenario !== undefined && scenario !== 'split') throw new Error(`unknown scenario "${String(scenario)}"`);
const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    records: { type: 'string', default: '1000000' },
    dir: { type: 'string' },
    tracing: { type: 'string' },
  },
});
const tracing = benchTracing(values.tracing);
const records = Number(values.records);
const dir = values.dir ?? join(tmpdir(), 'rowfleet-bench');
const MB = 1024 * 1024;
const say = (s: string) => process.stderr.write(s + '\n');

/** The machine's CPU ticks, busy and in all (Linux /proc/stat), or undefined elsewhere. */
function cpuTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn`; its seconds, and the core-seconds the whole machine was busy meanwhile (every process: the
 * runtime's functions, workers and emulators alike), so a run can be compared with what the cores allow.
 */
async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; seconds: number; busyCoreSeconds?: number }> {
  const c0 = cpuTicks();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuTicks();
  if (!c0 || !c1 || c1.total === c0.total) return { value, seconds };
  return {
    value,
    seconds,
    busyCoreSeconds: ((c1.busy - c0.busy) / (c1.total - c0.total)) * cpus().length * seconds,
  };
}

await mkdir(dir, { recursive: true });
const file = join(dir, `records-${records}.csv`);
const cp932File = join(dir, `records-${records}.cp932.csv`);
if (!existsSync(file)) {
  say(`generating ${records} records…`);
  await writeSampleCsv(file, records);
}
if (!existsSync(cp932File)) {
  say('writing the CP932 copy (iconv-lite)…');
  await writeSampleCsv(cp932File, records, 'cp932');
}
const bytes = statSync(file).size;
const cp932Bytes = statSync(cp932File).size;
say(
  `file: ${file} (${(bytes / MB).toFixed(1)} MiB, ${records} records; CP932 copy ${(cp932Bytes / MB).toFixed(1)} MiB); ${cpus().length} cores, node ${process.version}`,
);

/** The split's validation pass, in this process: read → decode → scan → chunk (without the S3 copy). */
async function splitPass(path: string): Promise<number> {
  let n = 0;
  let chunker: Chunker | undefined;
  const { maxRecordBytes } = getStage('local').limits;
  for await (const batch of scanRecordBatches(decodeToUtf8(createReadStream(path)), { maxRecordBytes })) {
    for (const ev of batch) {
      if (ev.kind === 'header')
        chunker = new Chunker('bench', 'split', '', ev, { maxBytes: 64 * 1024, maxRecords: 1000 });
      else {
        chunker!.add(ev);
        n = ev.n;
      }
    }
  }
  chunker?.flush();
  return n;
}

// Both files into the page cache first, so that every figure below reads them alike.
for (const f of [file, cp932File]) for await (const _ of createReadStream(f));

// 1a/1b. The anchors — read + UTF-8 decode (TextDecoder), read + iconv-lite's CP932 decode alone, to strings — and
// the split's validation pass on the same bytes, UTF-8 and CP932: three rounds, each anchor beside its pass, the
// median seconds of each. One round read the UTF-8 ratio anywhere in 0.24–0.65 on this shared machine, the anchor
// itself 300–720 MiB/s from round to round; the median of three alternated is what the figure is.
say("read + decode anchors and the split's validation pass (UTF-8, CP932), three rounds…");
const ROUNDS = 3;
type Timed = Awaited<ReturnType<typeof timed<number>>>;
const rounds: { readDecode: Timed; iconvDecode: Timed; splitUtf8: Timed; splitCp932: Timed }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const readDecode = await timed(async () => {
    const dec = new TextDecoder('utf-8');
    let n = 0;
    for await (const c of createReadStream(file)) n += dec.decode(c as Buffer, { stream: true }).length;
    return n + dec.decode().length;
  });
  const splitUtf8 = await timed(() => splitPass(file));
  const iconvDecode = await timed(async () => {
    const dec = iconv.getDecoder('cp932');
    let n = 0;
    for await (const c of createReadStream(cp932File)) n += dec.write(c as Buffer).length;
    return n + (dec.end() ?? '').length;
  });
  const splitCp932 = await timed(() => splitPass(cp932File));
  if (splitUtf8.value !== records || splitCp932.value !== records)
    throw new Error(
      `the split pass counted ${splitUtf8.value} / ${splitCp932.value} records, not ${records}`,
    );
  rounds.push({ readDecode, iconvDecode, splitUtf8, splitCp932 });
}
/** The round of median seconds of one measure. */
const medianOf = (k: keyof (typeof rounds)[number]): Timed =>
  [...rounds].sort((a, b) => a[k].seconds - b[k].seconds)[Math.floor(ROUNDS / 2)]![k];
const readDecode = medianOf('readDecode');
const iconvDecode = medianOf('iconvDecode');
const splitUtf8 = medianOf('splitUtf8');
const splitCp932 = medianOf('splitCp932');

// 1c. Raw csv-parse of the same bytes (arrays, default options).
say('raw csv-parse…');
const raw = await timed(async () => {
  let n = 0;
  for await (const _ of createReadStream(file).pipe(parse())) n++;
  return n;
});

/** The sha256 of one entry of a zip file (its data inflated), or undefined when it has none of that name. */
async function entrySha256(path: string, name: string): Promise<string | undefined> {
  const zip = await new Promise<yauzl.ZipFile>((res, rej) =>
    yauzl.open(path, { lazyEntries: true }, (e, z) => (e ? rej(e) : res(z))),
  );
  return new Promise<string | undefined>((res, rej) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      if (entry.fileName !== name) return zip.readEntry();
      zip.openReadStream(entry, (err, stream) => {
        if (err) return rej(err);
        const h = createHash('sha256');
        stream.on('data', (c: Buffer) => h.update(c));
        stream.on('error', rej);
        stream.on('end', () => {
          zip.close();
          res(h.digest('hex'));
        });
      });
    });
    zip.on('end', () => res(undefined));
    zip.on('error', rej);
    zip.readEntry();
  });
}
const fileSha256 = async (path: string) => {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
};

// 3a. Single-process floors: decode → parse → json processor → zip, one process, with the readers the pipeline
// uses (the split's decoder, the scanner with fields as the workers read their ranges). The floor writes what the job
// writes: the zip's manifest, errors.csv, one entry per record and results.csv (deflated, last), and results.csv
// beside it, its rows made by the workers' row writer (core/work/sheet-rows.ts) a batch at a time as a worker makes
// a chunk's, a plain row copied from the record's bytes as theirs are (the file decoded whole first, so each record's
// bytes are at hand). The entries-only floor (the zip's entries, nothing else) is the one every figure until
// 2026-12-07 used.
/** One floor run: the records done and this process's core-seconds for them. */
async function floorRun(sameOutputs: boolean): Promise<{ n: number; coreSeconds: number }> {
  const cpu0 = processCoreSeconds();
  const out = createWriteStream(join(dir, 'floor.zip'));
  const zip = new ZipWriter(async (b) => {
    if (!out.write(b)) await once(out, 'drain');
  });
  const sheetOut = sameOutputs ? createWriteStream(join(dir, 'floor-results.csv')) : undefined;
  const deflated = sameOutputs ? new DeflatedEntry() : undefined;
  const sheetWrite = async (b: Buffer) => {
    if (!sheetOut!.write(b)) await once(sheetOut!, 'drain');
    await deflated!.write(b);
  };
  // With the job's outputs: the decoded file whole, fed to the scanner a piece at a time (its offsets are the whole's).
  let input: AsyncIterable<Buffer> = decodeToUtf8(createReadStream(file));
  let whole: Buffer | undefined;
  if (sameOutputs) {
    const pieces: Buffer[] = [];
    for await (const c of input) pieces.push(c);
    const all = (whole = Buffer.concat(pieces));
    input = (async function* () {
      for (let at = 0; at < all.length; at += 1 << 20) yield all.subarray(at, at + (1 << 20));
    })();
  }
  let header: string[] = [];
  let n = 0;
  let prevEnd = 0;
  for await (const batch of scanRecordBatches(input, {
    maxRecordBytes: getStage('local').limits.maxRecordBytes,
    withFields: true,
  })) {
    let rows: SheetRows | undefined;
    const lines = { bytes: whole ?? Buffer.alloc(0), starts: [] as number[], ends: [] as number[] };
    for (const e of batch) {
      if (e.kind === 'header') {
        header = e.header;
        prevEnd = e.end;
        if (sameOutputs) {
          await zip.addEntry(FINALIZE_ENTRIES.manifest, JSON.stringify({ records }, null, 2) + '\n');
          await zip.addEntry(FINALIZE_ENTRIES.errors, errorsCsv([]));
          await sheetWrite(Buffer.from([0xef, 0xbb, 0xbf]));
          await sheetWrite(
            encodeSheetText(
              csvTextLine([...header, ...RESULT_COLUMNS], { delimiter: ',', guard: true }),
              'utf-8-bom',
            ),
          );
        }
      } else if (e.kind === 'record') {
        const fields = e.fields!;
        const outputs = await jsonProcessor.process(
          { n: e.n, line: e.line, fields },
          { site: 'bench', token: 'floor', header },
        );
        for (const o of outputs) await zip.addEntry(o.name, o.data);
        if (whole) {
          // The record's bytes without its line ending, as chunkRecords finds them (core/work/chunk-records.ts).
          let to = e.end;
          if (to > prevEnd && whole[to - 1] === 0x0a) to--;
          if (to > prevEnd && whole[to - 1] === 0x0d) to--;
          lines.starts.push(prevEnd);
          lines.ends.push(to);
          rows ??= new SheetRows({ header, delimiter: ',', encoding: 'utf-8' }, [], lines);
          rows.add(
            fields,
            { n: e.n, line: e.line, output: shownNames(outputs) ?? '' },
            lines.starts.length - 1,
          );
        }
        prevEnd = e.end;
        n++;
      } else prevEnd = e.end;
    }
    if (rows) await sheetWrite(rows.bytes());
  }
  if (deflated && sheetOut) {
    await deflated.end();
    await zip.addDeflated(FINALIZE_ENTRIES.results, deflated);
    sheetOut.end();
    await once(sheetOut, 'close');
  }
  await zip.finish();
  out.end();
  await once(out, 'close');
  return { n, coreSeconds: processCoreSeconds() - cpu0 };
}
say('single-process floor, entries only…');
const entriesFloor = await timed(() => floorRun(false));
say('single-process floor, the same outputs as the job (entries, results.csv in the zip and beside it)…');
const floor = await timed(() => floorRun(true));
if (floor.value.n !== records || entriesFloor.value.n !== records)
  throw new Error(`the floor counted ${floor.value.n} / ${entriesFloor.value.n} records, not ${records}`);
const floorCoreSeconds = floor.value.coreSeconds;

// 3b/2/4. End to end through the local API on the embedded runtime, each function in its own process.
const stateDir = join(dir, 'state');
rmSync(stateDir, { recursive: true, force: true });
say(`end-to-end run on the embedded runtime (tracing ${tracing})…`);
// The functions run from the command bundle's lambda host (their packages in one file), as a Lambda runs its bundle:
// compiling TypeScript at each function's start (tsx) is not the pipeline's cost.
const functionHost = (await commandBundle())?.['lambda-host'];
// The workers' code built first, as a deploy builds the image before any job (a no-op when nothing changed).
await prepareWorkers();
const rt = await LocalRuntime.start({
  stateDir,
  isolateFunctions: true,
  tracing,
  ...(functionHost ? { functionHost } : {}),
});
let e2e: Awaited<ReturnType<typeof timed<Awaited<ReturnType<typeof runJob>>>>>;
let job;
let stats: Record<string, QueueStats>;
let memory: Record<string, number>;
let e2eStarted: number | undefined;
let coreSeconds: ReturnType<NonNullable<ReturnType<typeof startCpuCount>>['stop']> | undefined;
try {
  const apiToken = await rt.tokenFor('sakai');
  e2eStarted = Date.now();
  const cpu = startCpuCount();
  e2e = await timed(() =>
    runJob({
      apiUrl: rt.apiUrl,
      apiToken,
      file,
      processor: 'json',
      outDir: join(dir, 'out'),
      directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
      progress: true,
      // On a shared, loaded machine the finalize of 1M records can go minutes without a visible move.
      stallSeconds: 900,
    }),
  );
  coreSeconds = cpu?.stop();
  job = await rt.deps.jobs.get('sakai', e2e.value.token);
  stats = (await (await fetchEmulatorPage(`${rt.endpoints.s3sqs}/_rowfleet/sqs-stats`)).json()) as Record<
    string,
    QueueStats
  >;
  memory = rt.functionMemory();
} finally {
  await rt.stop();
}
if (e2e.value.state !== 'SUCCEEDED' || !job?.splitStartedAt || !job.runningAt || !job.splitDoneAt) {
  throw new Error(`end-to-end job did not succeed: ${JSON.stringify(e2e.value)}`);
}
// The floor wrote the job's results.csv: the same bytes as the one in the job's zip, or the comparison is not fair.
const jobSheet = e2e.value.zip ? await entrySha256(e2e.value.zip, FINALIZE_ENTRIES.results) : undefined;
const floorSheetSameAsJob =
  jobSheet !== undefined && jobSheet === (await fileSha256(join(dir, 'floor-results.csv')));
if (!floorSheetSameAsJob) say("the floor's results.csv is not the job's: its figure is not like for like");
// 6. Start-up of a small job, once the runtime above has stopped: no runtime running.
say('start-up of a 10-row run (npx rowfleet run, no runtime running)…');
const startup = await measureStartup(3, dir);
const splitSeconds = (Date.parse(job.splitDoneAt) - Date.parse(job.splitStartedAt)) / 1000;
const validateSeconds = (Date.parse(job.runningAt) - Date.parse(job.splitStartedAt)) / 1000;
const q = stats[reportQueueName(rt.stage, e2e.value.token)] ?? { requests: 0, billed: 0, payloadBytes: 0 };

const mibs = (n: number, seconds: number) => +(n / MB / seconds).toFixed(1);
const ratio = (x: number) => +x.toFixed(2);
const round1 = (x: number | undefined) => (x === undefined ? undefined : +x.toFixed(1));
const floorRate = floor.value.n / floor.seconds;
const e2eRate = records / e2e.seconds;
const e2eStart = e2eStarted ?? NaN;
// Seconds of each phase of the end-to-end job: from its spans, or (tracing off) from the job's timestamps.
const phases = await jobPhases(stateDir, job, e2eStart, e2eStart + e2e.seconds * 1000, tracing);
const result = {
  records,
  fileMiB: +(bytes / MB).toFixed(1),
  cp932FileMiB: +(cp932Bytes / MB).toFixed(1),
  readDecodeMiBs: mibs(bytes, readDecode.seconds),
  splitMiBs: mibs(bytes, splitUtf8.seconds),
  splitVsReadDecode: ratio(readDecode.seconds / splitUtf8.seconds),
  // Each round's ratio (the figure above is of the medians).
  splitVsReadDecodeRounds: rounds.map((r) => ratio(r.readDecode.seconds / r.splitUtf8.seconds)),
  iconvCp932MiBs: mibs(cp932Bytes, iconvDecode.seconds),
  splitCp932MiBs: mibs(cp932Bytes, splitCp932.seconds),
  splitCp932VsIconv: ratio(iconvDecode.seconds / splitCp932.seconds),
  rawCsvParseMiBs: mibs(bytes, raw.seconds),
  splitVsRaw: ratio(raw.seconds / splitUtf8.seconds),
  splitPhaseMiBs: mibs(bytes, splitSeconds),
  splitValidateSeconds: +validateSeconds.toFixed(2),
  splitSeconds: +splitSeconds.toFixed(2),
  sqsRequestsPer1000: +((q.requests * 1000) / records).toFixed(2),
  sqsBilledPer1000: +((q.billed * 1000) / records).toFixed(2),
  e2eSeconds: +e2e.seconds.toFixed(2),
  e2eRecordsPerSecond: Math.round(e2eRate),
  floorSeconds: +floor.seconds.toFixed(2),
  floorRecordsPerSecond: Math.round(floorRate),
  e2eVsFloor: ratio(e2eRate / floorRate),
  // Core-seconds the machine was busy (all processes), in the floor's run and the end-to-end one (Linux only).
  floorBusyCoreSeconds: round1(floor.busyCoreSeconds),
  e2eBusyCoreSeconds: round1(e2e.busyCoreSeconds),
  // The pipeline's own core-seconds (split + workers + finalize processes, from /proc) ÷ the floor's process's.
  // The floor writes the job's outputs (the zip with results.csv, results.csv beside it).
  ownCoreSecondsVsFloor: coreSeconds ? ratio(ownCoreSeconds(coreSeconds) / floorCoreSeconds) : undefined,
  floorCoreSeconds: round1(floorCoreSeconds),
  // Against the floor of every figure until 2026-12-07: the zip's entries only, no results.csv.
  ownCoreSecondsVsEntriesFloor: coreSeconds
    ? ratio(ownCoreSeconds(coreSeconds) / entriesFloor.value.coreSeconds)
    : undefined,
  entriesFloorCoreSeconds: round1(entriesFloor.value.coreSeconds),
  floorSheetSameAsJob,
  coreSeconds,
  phaseSeconds: phases.seconds,
  phaseSource: phases.source,
  // `--tracing off`: tracing's overhead is this run's own core-seconds against a `--tracing file` run's.
  tracing,
  splitPeakRssMiB: Math.round((memory.upload ?? 0) / MB),
  finalizePeakRssMiB: Math.round((memory.finalize ?? 0) / MB),
  startupSeconds: startup.seconds,
  startupRuns: startup.runs,
};
const check = (ok: boolean) => (ok ? 'ok' : 'MISSED');
console.log(`
Rowfleet benchmark — ${records.toLocaleString('en')} records, ${result.fileMiB} MiB (CP932 copy ${result.cp932FileMiB} MiB), ${cpus().length} cores, node ${process.version}
1. split, UTF-8           ${result.splitMiBs} MiB/s (validation pass: read → decode → scan → chunk, in this process; medians of ${ROUNDS} rounds)
   read + UTF-8 decode    ${result.readDecodeMiBs} MiB/s (same bytes, TextDecoder)
   ratio                  ${result.splitVsReadDecode}   target ≥ 0.35  ${check(result.splitVsReadDecode >= 0.35)}   (rounds ${result.splitVsReadDecodeRounds.join(', ')})
   split, CP932           ${result.splitCp932MiBs} MiB/s (the same records in CP932, transcoded to UTF-8 on the way)
   iconv-lite decode      ${result.iconvCp932MiBs} MiB/s (same bytes, to strings)
   ratio                  ${result.splitCp932VsIconv}   target ≥ 0.35  ${check(result.splitCp932VsIconv >= 0.35)}
   raw csv-parse          ${result.rawCsvParseMiBs} MiB/s (same bytes, default options; split / raw ${result.splitVsRaw})
   split phase, e2e run   ${result.splitPhaseMiBs} MiB/s (validate ${result.splitValidateSeconds} s + enqueue, ${result.splitSeconds} s in all)
2. SQS requests / 1,000   ${result.sqsRequestsPer1000} API requests (${result.sqsBilledPer1000} billed 64 KiB units)   target ≤ 10  ${check(result.sqsRequestsPer1000 <= 10)}
3. end to end             ${result.e2eRecordsPerSecond} records/s (${result.e2eSeconds} s: upload → zip downloaded, json processor)
   phases (s, ${result.phaseSource}) ${Object.entries(result.phaseSeconds)
     .map(([k, v]) => `${k} ${v.toFixed(1)}`)
     .join(', ')}
   single-process floor   ${result.floorRecordsPerSecond} records/s (${result.floorSeconds} s)
   ratio                  ${result.e2eVsFloor}   target ≥ 1.0  ${check(result.e2eVsFloor >= 1)}
   own core-s / floor     ${result.ownCoreSecondsVsFloor ?? 'n/a'}   target ≤ 1.3  ${check((result.ownCoreSecondsVsFloor ?? Infinity) <= 1.3)}   (${JSON.stringify(result.coreSeconds)} vs floor ${result.floorCoreSeconds}, the job's outputs; its results.csv ${result.floorSheetSameAsJob ? 'the same bytes as the job’s' : 'NOT the job’s'})
   own core-s / entries   ${result.ownCoreSecondsVsEntriesFloor ?? 'n/a'}   (vs ${result.entriesFloorCoreSeconds} core-s: a floor of the zip's entries only, as until 2026-12-07)
   machine CPU busy       ${result.e2eBusyCoreSeconds ?? 'n/a'} core-s end to end, ${result.floorBusyCoreSeconds ?? 'n/a'} core-s for the floor (${cpus().length} cores; all processes)
4. peak RSS  split        ${result.splitPeakRssMiB} MiB   target < 300  ${check(result.splitPeakRssMiB < 300)}
             finalize     ${result.finalizePeakRssMiB} MiB   target < 512  ${check(result.finalizePeakRssMiB < 512)}
5. start-up               ${result.startupSeconds} s median of ${result.startupRuns.join(', ')} (npx rowfleet run, 10 rows, spawn → receivedAt)   target ≤ 1.5  ${check(result.startupSeconds <= 1.5)}
${JSON.stringify(result)}`);
