import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { Chunker } from './chunk.ts';
import { readRecords, type RejectedRecord } from './csv.ts';
import { decodeText, type DecodeInfo } from './decode.ts';
import { FileRejectedError } from './errors.ts';
import { workerCount } from './launcher.ts';
import { jobLogger } from './log.ts';
import { publishMetrics } from './metrics.ts';
import { keys, reportQueueName } from './naming.ts';
import { requestFinalize, type PipelineDeps } from './pipeline.ts';
import { batchBodies } from './aws/queues.ts';
import type { Job, JobError } from './jobs.ts';

export interface SplitResult {
  readonly state: 'RUNNING' | 'REJECTED' | 'SKIPPED';
  readonly error?: JobError;
  readonly records?: number;
  readonly chunks?: number;
  readonly workers?: number;
}

/** Appends lines to a temporary file with backpressure. */
class Spool {
  private readonly out;
  count = 0;
  constructor(readonly path: string) {
    this.out = createWriteStream(path);
  }
  async push(line: string): Promise<void> {
    this.count++;
    if (!this.out.write(line + '\n')) await once(this.out, 'drain');
  }
  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'close');
  }
  lines(): AsyncIterable<string> {
    return createInterface({ input: createReadStream(this.path), crlfDelay: Infinity });
  }
}

/**
 * Splits a received job's CSV onto its own queue. The whole file is validated first (decoded, parsed,
 * chunked into a spool file), so a rejected file never gets a queue or a worker; then the queue is
 * created, workers are launched and the chunks are sent.
 */
export async function splitJob(
  deps: PipelineDeps,
  site: string,
  token: string,
  opts: { workers?: number } = {},
): Promise<SplitResult> {
  const log = jobLogger(site, token);
  const job = await deps.jobs.get(site, token);
  if (!job || job.state !== 'RECEIVED') {
    log.info('split skipped: job is not waiting to be split', { state: job?.state });
    return { state: 'SKIPPED' };
  }
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'rowfleet-split-'));
  const chunks = new Spool(join(dir, 'chunks.jsonl'));
  const rejects = new Spool(join(dir, 'rejected.jsonl'));
  try {
    const info: DecodeInfo = {};
    const chunker = new Chunker(site, token, {
      maxBytes: deps.limits.chunkMaxBytes,
      maxRecords: deps.limits.chunkMaxRecords,
    });
    let header: string[] = [];
    let records = 0;
    try {
      const source = await deps.objects.stream(job.sourceKey);
      for await (const ev of readRecords(decodeText(source, info), {
        maxRecordBytes: deps.limits.maxRecordBytes,
      })) {
        if (ev.kind === 'record') {
          records = ev.n;
          const body = chunker.add(ev);
          if (body) await chunks.push(body);
        } else if (ev.kind === 'rejected') {
          records = ev.n;
          const r: RejectedRecord = {
            n: ev.n,
            line: ev.line,
            code: ev.code,
            message: ev.message,
            raw: ev.raw,
          };
          await rejects.push(JSON.stringify(r));
        } else {
          header = ev.header;
        }
      }
      const last = chunker.flush();
      if (last) await chunks.push(last);
    } catch (err) {
      if (!(err instanceof FileRejectedError)) throw err;
      const error: JobError = {
        code: err.code,
        message: err.message,
        ...(err.line ? { line: err.line } : {}),
      };
      await deps.jobs.transition(site, token, 'REJECTED', {
        error,
        encoding: info.encoding,
        finishedAt: new Date().toISOString(),
      });
      log.warn('file rejected', { code: err.code, line: err.line });
      publishMetrics(deps.env.stage, { JobsRejected: 1, SplitDuration: Date.now() - started });
      return { state: 'REJECTED', error };
    }
    await Promise.all([chunks.close(), rejects.close()]);

    const valid = records - rejects.count;
    const workers = workerCount(valid, deps.limits, opts.workers);
    const queueName = reportQueueName(deps.env.stage, token);
    const queueUrl =
      chunks.count > 0
        ? await deps.queues.createJobQueue({ name: queueName, site, token, dlqArn: deps.env.dlqArn })
        : undefined;
    if (rejects.count > 0) {
      await deps.objects.put(keys.rejected(site, token), await readAll(rejects), 'application/x-ndjson');
    }
    const running: Partial<Job> = {
      header,
      encoding: info.encoding,
      queueName: queueUrl ? queueName : undefined,
      workers,
      runningAt: new Date().toISOString(),
    };
    if (!(await deps.jobs.transition(site, token, 'RUNNING', running))) {
      log.info('split skipped: another split started this job');
      return { state: 'SKIPPED' };
    }
    if (workers > 0) await deps.launcher.launch({ site, token, count: workers });

    if (queueUrl) await sendSpooled(deps, queueUrl, site, token, chunks);
    const complete = await deps.jobs.completeSplit(site, token, {
      totalChunks: chunks.count,
      totalRecords: records,
      rejected: rejects.count,
      splitDoneAt: new Date().toISOString(),
    });
    if (complete) await requestFinalize(deps, { site, token });
    publishMetrics(deps.env.stage, { SplitDuration: Date.now() - started, RecordsRejected: rejects.count, WorkersLaunched: workers });
    log.info('split done', {
      records,
      rejected: rejects.count,
      chunks: chunks.count,
      workers,
      ms: Date.now() - started,
      encoding: info.encoding,
    });
    return { state: 'RUNNING', records, chunks: chunks.count, workers };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readAll(spool: Spool): Promise<string> {
  let s = '';
  for await (const line of spool.lines()) s += line + '\n';
  return s;
}

/** Sends the spooled chunk bodies, a few batches in flight at once. */
async function sendSpooled(
  deps: PipelineDeps,
  queueUrl: string,
  site: string,
  token: string,
  spool: Spool,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = async (bodies: string[]) => {
    for (const batch of batchBodies(bodies)) {
      const p = deps.queues.sendBatch(queueUrl, site, token, batch).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 4) await Promise.race(inflight);
    }
  };
  for await (const body of spool.lines()) {
    pending.push(body);
    pendingBytes += body.length;
    if (pending.length >= 10 || pendingBytes > 768 * 1024) {
      const b = pending;
      pending = [];
      pendingBytes = 0;
      await flush(b);
    }
  }
  if (pending.length) await flush(pending);
  await Promise.all(inflight);
}
