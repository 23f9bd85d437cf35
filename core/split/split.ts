import { Chunker, mergeChunks, type ChunkMessage } from '../messages/chunk.ts';
import type { RejectedRecord } from '../source/csv.ts';
import { scanRecordBatches } from '../source/scan.ts';
import { decodeToUtf8, type DecodeInfo } from '../source/decode.ts';
import { FileRejectedError } from '../shared/errors.ts';
import { workerCount } from '../ops/launcher.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { keys, reportQueueName } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { batchBodies } from '../aws/queues.ts';
import { expiresAt, type Job, type JobError } from '../jobs/store.ts';
import { recordJobUsage, usageStoreOf } from '../usage/store.ts';

/** UTF-8 uploads are read by the workers as they are; any other encoding through a transcoded copy. */
const isUtf8Upload = (e: string | undefined) => e === 'utf-8' || e === 'utf-8-bom';
/** Bytes held while the encoding is still open (ASCII so far) before they go to the copy anyway. */
const HOLD_UNDECIDED_BYTES = 16 * 1024 * 1024;

/** The pieces the split cuts while validating (joined into chunks afterwards). */
const SUB_CHUNK_BYTES = 64 * 1024;
const SUB_CHUNK_RECORDS = 1000;
/** Enough chunks per worker that a slow or killed worker's share is picked up by the others. */
const CHUNKS_PER_WORKER = 4;

export interface SplitResult {
  readonly state: 'RUNNING' | 'REJECTED' | 'SKIPPED';
  readonly error?: JobError;
  readonly records?: number;
  readonly chunks?: number;
  readonly workers?: number;
}

/**
 * Splits a received job. The whole file is validated first (decoded, parsed, every record classified),
 * so a rejected file never gets a queue or a worker. Records are grouped into chunks — byte ranges of
 * the UTF-8 source — as they go by; then the queue is created, workers launched and the chunks sent.
 * A CP932 or UTF-16 upload is transcoded to a UTF-8 copy during the same pass.
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
  const info: DecodeInfo = {};
  const pieces: ChunkMessage[] = [];
  const rejected: RejectedRecord[] = [];
  let header: string[] = [];
  let delimiter = ',';
  let records = 0;
  let copy: ReturnType<typeof deps.objects.multipart> | undefined;
  let chunker: Chunker | undefined;
  try {
    const source = await deps.objects.stream(job.sourceKey);
    const utf8 = decodeToUtf8(source, info);
    // Workers read ranges of UTF-8: the upload itself when it is UTF-8, else a transcoded copy holding
    // every byte the parser saw. Until the decoder has seen a non-ASCII byte the encoding is open (ASCII
    // reads the same either way): those bytes are held, up to a bound, then written to the copy too.
    const held: Buffer[] = [];
    let heldBytes = 0;
    const startCopy = async () => {
      copy ??= deps.objects.multipart(keys.utf8Source(site, token), 'text/csv; charset=utf-8');
      for (const h of held.splice(0)) await copy.write(h);
      heldBytes = 0;
    };
    async function* teed(): AsyncGenerator<Buffer> {
      for await (const b of utf8) {
        if (info.encoding === undefined) {
          held.push(b);
          heldBytes += b.length;
          if (copy || heldBytes > HOLD_UNDECIDED_BYTES) await startCopy();
        } else if (!isUtf8Upload(info.encoding)) {
          await startCopy();
          await copy!.write(b);
        } else {
          held.length = 0;
          heldBytes = 0;
        }
        yield b;
      }
    }
    for await (const batch of scanRecordBatches(teed(), { maxRecordBytes: deps.limits.maxRecordBytes })) {
      for (const ev of batch) {
        if (ev.kind === 'header') {
          header = ev.header;
          delimiter = ev.delimiter;
          // The key and the BOM shift are set once the whole file is read (the encoding may still be open).
          chunker = new Chunker(
            site,
            token,
            '',
            ev,
            // Fine pieces first; they are joined into work units once the counts are known.
            {
              maxBytes: Math.min(SUB_CHUNK_BYTES, deps.limits.chunkMaxBytes),
              maxRecords: Math.min(SUB_CHUNK_RECORDS, deps.limits.chunkMaxRecords),
            },
          );
          continue;
        }
        records = ev.n;
        if (ev.kind === 'rejected')
          rejected.push({ n: ev.n, line: ev.line, code: ev.code, message: ev.message, raw: ev.raw });
        const full = chunker!.add(ev);
        if (full) pieces.push(full);
      }
    }
    const last = chunker?.flush();
    if (last) pieces.push(last);
    const fromUpload = isUtf8Upload(info.encoding);
    if (fromUpload) {
      await copy?.abort();
    } else {
      await startCopy();
      await copy!.done();
    }
    const key = fromUpload ? job.sourceKey : keys.utf8Source(site, token);
    const shift = fromUpload ? (info.bomBytes ?? 0) : 0;
    pieces.splice(
      0,
      pieces.length,
      ...pieces.map((p) => ({ ...p, key, start: p.start + shift, end: p.end + shift })),
    );
  } catch (err) {
    await copy?.abort();
    if (!(err instanceof FileRejectedError)) throw err;
    const error: JobError = { code: err.code, message: err.message, ...(err.line ? { line: err.line } : {}) };
    const finished = await deps.jobs.transition(site, token, 'REJECTED', {
      error,
      encoding: info.encoding,
      finishedAt: new Date().toISOString(),
      expiresAt: expiresAt(deps.limits.retentionDays),
    });
    if (finished) {
      await recordJobUsage(usageStoreOf(deps), finished);
      await deps.notifier?.jobFinished(finished, 'REJECTED', {
        total: 0,
        succeeded: 0,
        failed: 0,
        rejected: 0,
      });
    }
    log.warn('file rejected', { code: err.code, line: err.line });
    publishMetrics(deps.env.stage, { JobsRejected: 1, SplitDuration: Date.now() - started });
    return { state: 'REJECTED', error };
  }

  const valid = records - rejected.length;
  const workers = workerCount(valid, deps.limits, opts.workers);
  // About CHUNKS_PER_WORKER chunks per worker, within the configured chunk limits.
  const chunks = mergeChunks(pieces, {
    targetRecords: Math.max(1, Math.ceil(valid / Math.max(1, workers * CHUNKS_PER_WORKER))),
    maxBytes: deps.limits.chunkMaxBytes,
    maxRecords: deps.limits.chunkMaxRecords,
  });
  const queueName = reportQueueName(deps.env.stage, token);
  const queueUrl =
    chunks.length > 0
      ? await deps.queues.createJobQueue({ name: queueName, site, token, dlqArn: deps.env.dlqArn })
      : undefined;
  if (rejected.length > 0) {
    await deps.objects.put(
      keys.rejected(site, token),
      rejected.map((r) => JSON.stringify(r)).join('\n') + '\n',
      'application/x-ndjson',
    );
  }
  const running: Partial<Job> = {
    header,
    delimiter,
    encoding: info.encoding,
    queueName: queueUrl ? queueName : undefined,
    workers,
    splitStartedAt: new Date(started).toISOString(),
    runningAt: new Date().toISOString(),
  };
  if (!(await deps.jobs.transition(site, token, 'RUNNING', running))) {
    log.info('split skipped: another split started this job');
    return { state: 'SKIPPED' };
  }
  if (workers > 0) await deps.launcher.launch({ site, token, count: workers });
  if (queueUrl) {
    await Promise.all(
      batchBodies(chunks.map((c) => JSON.stringify(c))).map((b) =>
        deps.queues.sendBatch(queueUrl, site, token, b),
      ),
    );
  }
  const complete = await deps.jobs.completeSplit(site, token, {
    totalChunks: chunks.length,
    totalRecords: records,
    rejected: rejected.length,
    splitDoneAt: new Date().toISOString(),
  });
  if (complete) await requestFinalize(deps, { site, token });
  publishMetrics(deps.env.stage, {
    SplitDuration: Date.now() - started,
    RecordsRejected: rejected.length,
    WorkersLaunched: workers,
  });
  log.info('split done', {
    records,
    rejected: rejected.length,
    chunks: chunks.length,
    workers,
    ms: Date.now() - started,
    encoding: info.encoding,
  });
  return { state: 'RUNNING', records, chunks: chunks.length, workers };
}
