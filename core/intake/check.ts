import { getSite, getStage } from '../../config/index.ts';
import { pricesAsOf, pricesFor } from '../../config/prices.ts';
import type { PipelineDeps } from '../deps.ts';
import { processorInfo } from '../processors/index.ts';
import { templateOf } from '../processors/mail.ts';
import { limiterName, ratePerSecond, workerRecordsPerSecond } from '../processors/settings.ts';
import { simulatedCostMs, simulationOf } from '../processors/simulate.ts';
import { neededColumns, PREVIEW_TOKEN, RecordError } from '../processors/types.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { isUtf8Upload } from '../split/source-copy.ts';
import { checkFile, type FileCheck } from '../split/split.ts';
import { refuseTooLarge, validated, type ValidatedRequest } from './operations.ts';
import { estimateRun, type Estimate } from './estimate.ts';
import { parseJobRequest } from './request.ts';
import type { CheckAnswer, CheckProblem, SampleOutput } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { CheckAnswer, CheckProblem, SampleOutput };

/** Records whose output the check renders (the first accepted ones). */
export const CHECK_SAMPLES = 3;
/** Rejected records the check lists (all are counted). */
export const CHECK_REJECTED_SHOWN = 20;

/**
 * POST /jobs?check=true: the same request as POST /jobs (its options checked by the same rules: 400, 413, 503
 * PROCESSOR_BROKEN), the file read by the split's own validation (core/split/split.ts checkFile), and nothing
 * done: no job item, object, queue, worker, mail or usage count. Answers what the run would find, the first
 * records' outputs rendered by the processor's side-effect-free preview, and an estimate of the run.
 */
export async function checkDirectJob(
  deps: Pick<PipelineDeps, 'budget' | 'env' | 'grants' | 'limits' | 'timings'>,
  site: string,
  body: Buffer,
  input: unknown,
): Promise<CheckAnswer> {
  const r = await validated(site, parseJobRequest(input));
  refuseTooLarge(deps, body);
  const processor = await processorInfo(r.processor, deps.env.stage);
  const job = { site, token: PREVIEW_TOKEN, processor: r.processor, options: r.options };
  const file = await checkFile(deps, job, body, { workers: r.workers, samples: CHECK_SAMPLES });
  const valid = file.records - file.rejected.length;
  const ok = file.problems.length === 0;
  const samples = ok ? await renderSamples(processor, r, site, file) : [];
  const workersNow =
    valid > 0
      ? await deps.grants.wouldGrant(deps.budget, {
          site,
          remaining: valid,
          maxWorkers: Math.min(file.workers, file.chunks),
        })
      : 0;
  const answer: CheckAnswer = {
    check: true,
    site,
    processor: r.processor,
    ...(processor.takesTemplate ? templateNamed(site, r) : {}),
    ...(r.fileName !== undefined ? { fileName: r.fileName } : {}),
    ...(file.encoding ? { encoding: file.encoding } : {}),
    delimiter: file.delimiter,
    header: file.header,
    records: file.records,
    valid,
    ok,
    problems: file.problems.map((p) => ({
      code: p.code,
      message: p.message,
      ...(p.line !== undefined ? { line: p.line } : {}),
      ...(p.code === 'PROCESSOR_FIELDS_MISSING' ? { columns: file.missing } : {}),
    })),
    rejected: {
      count: file.rejected.length,
      first: file.rejected
        .slice(0, CHECK_REJECTED_SHOWN)
        .map((x) => ({ record: x.n, line: x.line, code: x.code, message: x.message })),
    },
    needs: { columns: neededColumns(processor.needs, { site, options: r.options }), missing: file.missing },
    samples,
    estimate: await estimateOf(deps, processor, r, file, body.length, valid, workersNow, samples),
  };
  jobLogger(site, PREVIEW_TOKEN).info('checked', {
    processor: r.processor,
    records: file.records,
    rejected: file.rejected.length,
    ok,
    problems: file.problems.map((p) => p.code),
  });
  return answer;
}

type Info = Awaited<ReturnType<typeof processorInfo>>;

/** The template the run would fill: the one asked for, else the site's first (the `mail` processor's rule). */
function templateNamed(site: string, r: ValidatedRequest): { template?: string } {
  try {
    return { template: templateOf(getSite(site), r.options).name };
  } catch {
    // A site without bulk-mail templates (a user's processor that takes a template of its own): as asked.
    return r.template !== undefined ? { template: r.template } : {};
  }
}

/**
 * The sample records' outputs through the processor's `preview` (never `process`: it may have side effects). A
 * processor without one (a user's: the API never runs a user's code) shows nothing.
 */
async function renderSamples(
  processor: Info,
  r: ValidatedRequest,
  site: string,
  file: FileCheck,
): Promise<CheckAnswer['samples']> {
  const ctx = { site, token: PREVIEW_TOKEN, header: file.header, options: r.options };
  return Promise.all(
    file.samples.map(async (row) => {
      let output: SampleOutput;
      if (!processor.preview) {
        output = {
          kind: 'none',
          reason: `The processor "${r.processor}" has no preview: the check never runs a processor's records, which may have side effects.`,
        };
      } else {
        try {
          output = await processor.preview(row, ctx);
        } catch (err) {
          // The record's refusal, as the run would record it (a RecordError's own code, else PROCESSING_FAILED).
          output = {
            kind: 'error',
            code: err instanceof RecordError ? err.code : 'PROCESSING_FAILED',
            message: errorMessage(err),
          };
        }
      }
      return { record: row.n, line: row.line, output };
    }),
  );
}

/** Bytes a record's entries add to the zip, from what the samples show (a mail's: its `mail/<n>.json`). */
function outputBytes(samples: CheckAnswer['samples']): number {
  const sizes = samples.map(({ output: o }) => {
    if (o.kind === 'entries') return o.entries.reduce((n, e) => n + Buffer.byteLength(e.text, 'utf8'), 0);
    if (o.kind === 'mail')
      return Buffer.byteLength(
        JSON.stringify({ to: o.to, subject: o.subject, messageId: 'x'.repeat(60), sentAt: new Date(0) }),
      );
    return 0;
  });
  return sizes.length === 0 ? 0 : sizes.reduce((a, b) => a + b, 0) / sizes.length;
}

async function estimateOf(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'timings'>,
  processor: Info,
  r: ValidatedRequest,
  file: FileCheck,
  bytes: number,
  valid: number,
  workersNow: number,
  samples: CheckAnswer['samples'],
): Promise<Estimate> {
  const stage = getStage(deps.env.stage);
  const sim = simulationOf(r.options);
  const costMs = sim ? simulatedCostMs(processor, sim) : processor.costMs;
  const { region, prices } = pricesFor(stage.region);
  const rate = ratePerSecond(processor, stage);
  return estimateRun({
    records: valid,
    bytes,
    utf8Copy: file.encoding !== undefined && !isUtf8Upload(file.encoding),
    chunks: file.chunks,
    workers: file.workers,
    workersNow,
    workerRecordsPerSecond: workerRecordsPerSecond({ ...processor, costMs }, r.options, deps.limits),
    ...(rate !== undefined ? { ratePerSecond: rate } : {}),
    sideEffects: processor.sideEffects ?? false,
    mails: processor.rateLimit !== undefined && limiterName(processor) === 'ses',
    outputBytesPerRecord: outputBytes(samples),
    jobItemBytes: 1024 + Buffer.byteLength(file.header.join(file.delimiter), 'utf8'),
    worker: {
      vcpu: stage.infra.workerCpu / 1024,
      memoryGb: stage.infra.workerMemoryMiB / 1024,
      arm: stage.infra.workerArchitecture === 'ARM64',
    },
    local: deps.env.stage === 'local',
    idlePolls: deps.timings.workerIdlePolls,
    waitSeconds: deps.timings.workerWaitSeconds,
    retentionDays: deps.limits.retentionDays,
    region,
    prices,
    pricesAsOf: pricesAsOf(prices),
    jpyPerUsd: stage.jpyPerUsd,
  });
}
