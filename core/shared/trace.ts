import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Span,
  type SpanContext,
  type TimeInput,
} from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  RandomIdGenerator,
  type IdGenerator,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

/**
 * One OpenTelemetry trace per job (issue 22). No process lives from a job's upload to its finalize, so the job's
 * trace id and its job span's id are chosen when the job is created and kept on its item as a W3C traceparent
 * (`Job.trace`); every later span (split, queue wait, worker start, chunk attempts, finalize, zip) names that
 * context as its parent — or, for chunk attempts, as a link — and the finalize emits the job span itself at the
 * job's end with the pinned ids. Contexts are passed explicitly: no global provider, no context manager (an
 * AsyncLocalStorage would tax every await of the worker loop), never a span per record.
 */

/** `00-<trace id>-<span id>-<flags>` (W3C Trace Context, version 00). */
export const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Every span attribute this project writes starts with it; `rowfleet.site` and `rowfleet.token` are on every span. */
export const ATTR = {
  site: 'rowfleet.site',
  token: 'rowfleet.token',
  /** The job's attempt (1: its first run, 2, 3, … a retry). */
  attempt: 'rowfleet.attempt',
  chunk: 'rowfleet.chunk',
  records: 'rowfleet.records',
  workerId: 'rowfleet.worker.id',
  /** Which delivery of a chunk message this is (SQS ApproximateReceiveCount). */
  receiveCount: 'rowfleet.receive_count',
  succeeded: 'rowfleet.succeeded',
  failed: 'rowfleet.failed',
  rejected: 'rowfleet.rejected',
  outcome: 'rowfleet.outcome',
  chunks: 'rowfleet.chunks',
  workers: 'rowfleet.workers',
  processKind: 'rowfleet.process',
} as const;

/** What a chunk attempt ended as (`rowfleet.outcome` of a `rowfleet.chunk` span). */
export type ChunkOutcome = 'done' | 'duplicate' | 'retried' | 'released' | 'gaveUp' | 'foreign';

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A traceparent as a remote span context; undefined for anything malformed (an old job or message has none). */
export function parseTraceparent(tp: string | undefined): SpanContext | undefined {
  const m = tp === undefined ? null : TRACEPARENT_RE.exec(tp);
  if (!m || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true };
}

export function formatTraceparent(sc: Pick<SpanContext, 'traceId' | 'spanId' | 'traceFlags'>): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

const random = new RandomIdGenerator();

/** A new job's context: a fresh trace id and the id its job span will have, sampled (tracing decides at export). */
export function newJobTraceparent(): string {
  return formatTraceparent({
    traceId: random.generateTraceId(),
    spanId: random.generateSpanId(),
    traceFlags: TraceFlags.SAMPLED,
  });
}

/** A retry attempt's context: the job's trace, a new span id (the attempt span, a child of the job span). */
export function attemptTraceparent(jobTrace: string | undefined): string | undefined {
  const job = parseTraceparent(jobTrace);
  return job && formatTraceparent({ ...job, spanId: random.generateSpanId() });
}

/** The fields of a job item the trace context is read from. */
export interface TracedJob {
  readonly site: string;
  readonly token: string;
  readonly trace?: string;
  readonly attempt?: number;
  readonly attempts?: readonly { readonly n: number; readonly trace?: string }[];
}

/** The context the current attempt's spans hang from: a retry's attempt span, else the job span. */
export function currentTraceparent(job: TracedJob): string | undefined {
  const n = job.attempt ?? 1;
  if (n <= 1) return job.trace;
  return job.attempts?.find((a) => a.n === n)?.trace ?? job.trace;
}

/** The attributes every span of a job carries (the file exporter routes on site and token). */
export function jobAttrs(
  job: Pick<TracedJob, 'site' | 'token' | 'attempt'>,
  more: Attributes = {},
): Attributes {
  return { [ATTR.site]: job.site, [ATTR.token]: job.token, [ATTR.attempt]: job.attempt ?? 1, ...more };
}

/** What a step did with no tracing, or for a job with no (or an unsampled) context: nothing is recorded. */
export const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export interface SpanStart {
  readonly startTime?: TimeInput;
  /** Linked contexts (traceparents or span contexts): a chunk attempt links to its job's or attempt's span. */
  readonly links?: readonly (string | SpanContext | undefined)[];
  readonly kind?: SpanKind;
}

/**
 * The tracer of one process: a BatchSpanProcessor (exports off the hot path, in batches; a full queue drops,
 * never blocks) over the exporter the environment chose (core/aws/tracing.ts). Ids can be pinned for one
 * synchronous startSpan call: that is how a span chosen at upload is emitted at the job's end.
 */
export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer;
  private pinned: { traceId?: string; spanId?: string } | undefined;
  private readonly onSpan: () => void;

  constructor(
    exporter: SpanExporter,
    o: {
      readonly service: string;
      readonly processKind?: string;
      readonly scheduledDelayMillis?: number;
      /** Told of each span recorded (the AWS call recorder: this process will export it). */
      readonly onSpan?: () => void;
    },
  ) {
    this.onSpan = o.onSpan ?? (() => undefined);
    const ids: IdGenerator = {
      generateTraceId: () => this.pinned?.traceId ?? random.generateTraceId(),
      generateSpanId: () => {
        const id = this.pinned?.spanId;
        if (this.pinned) this.pinned = { ...this.pinned, spanId: undefined };
        return id ?? random.generateSpanId();
      },
    };
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        [ATTR_SERVICE_NAME]: o.service,
        ...(o.processKind ? { [ATTR.processKind]: o.processKind } : {}),
      }),
      idGenerator: ids,
      spanProcessors: [
        new BatchSpanProcessor(exporter, {
          scheduledDelayMillis: o.scheduledDelayMillis ?? 1000,
          maxExportBatchSize: 512,
          maxQueueSize: 2048,
          exportTimeoutMillis: 5000,
        }),
      ],
    });
    this.tracer = this.provider.getTracer('rowfleet');
  }

  /** A span under `parent` (a traceparent or a span context); a no-op span when there is none or it is unsampled. */
  start(name: string, parent: string | SpanContext | undefined, attrs: Attributes, o: SpanStart = {}): Span {
    const p = typeof parent === 'string' ? parseTraceparent(parent) : parent;
    if (!p || !(p.traceFlags & TraceFlags.SAMPLED)) return NO_SPAN;
    const links = (o.links ?? []).flatMap((l) => {
      const context = typeof l === 'string' ? parseTraceparent(l) : l;
      return context ? [{ context }] : [];
    });
    this.onSpan();
    return this.tracer.startSpan(
      name,
      {
        attributes: attrs,
        links,
        ...(o.kind !== undefined ? { kind: o.kind } : {}),
        ...(o.startTime !== undefined ? { startTime: o.startTime } : {}),
      },
      trace.setSpanContext(ROOT_CONTEXT, p),
    );
  }

  /**
   * A span whose own ids were chosen before (`ids`, a traceparent): the job span (a root: `parent` undefined) or a
   * retry's attempt span (parent: the job span). Sync from pinning to startSpan, so no other span takes the ids.
   */
  startPinned(
    name: string,
    ids: string | undefined,
    parent: string | undefined,
    attrs: Attributes,
    startTime: TimeInput,
  ): Span {
    const own = parseTraceparent(ids);
    if (!own || !(own.traceFlags & TraceFlags.SAMPLED)) return NO_SPAN;
    const p = parseTraceparent(parent);
    this.onSpan();
    this.pinned = { traceId: own.traceId, spanId: own.spanId };
    try {
      return this.tracer.startSpan(
        name,
        { attributes: attrs, startTime, ...(p ? {} : { root: true }) },
        p ? trace.setSpanContext(ROOT_CONTEXT, p) : ROOT_CONTEXT,
      );
    } finally {
      this.pinned = undefined;
    }
  }

  /** Exports what is queued, waiting at most `ms` (a Lambda invocation must not hang on a slow endpoint). */
  async flush(ms = 2000): Promise<void> {
    await bounded(this.provider.forceFlush(), ms);
  }

  /** Flushes and stops (a worker's exit). */
  async shutdown(ms = 5000): Promise<void> {
    await bounded(this.provider.shutdown(), ms);
  }
}

async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, Math.max(0, ms));
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/** A span under `parent` through `tracing` when there is one; a no-op span otherwise (tracing off). */
export function startSpan(
  tracing: Tracing | undefined,
  name: string,
  parent: string | SpanContext | undefined,
  attrs: Attributes,
  o?: SpanStart,
): Span {
  return tracing ? tracing.start(name, parent, attrs, o) : NO_SPAN;
}

/**
 * A step's span of a job (the split, the wait for workers, the finalize, a worker's start): under the context its
 * current attempt hangs from (a retry's attempt span, else the job span), with the job's attributes and `attrs`.
 */
export function startJobSpan(
  tracing: Tracing | undefined,
  name: string,
  job: TracedJob,
  o: SpanStart & { readonly attrs?: Attributes } = {},
): Span {
  const { attrs, ...start } = o;
  return startSpan(tracing, name, currentTraceparent(job), jobAttrs(job, attrs), start);
}

/** A span's own context as a traceparent (undefined for a no-op span): what a request it sends carries. */
export function traceparentOf(span: Span): string | undefined {
  const sc = span.spanContext();
  return span.isRecording() ? formatTraceparent(sc) : undefined;
}

/** Ends a span with an error status (a step that threw); the error is the caller's to handle. */
export function endWithError(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}

/** The fields of a finished job its job (or attempt) span is emitted from. */
export interface EndedJob extends TracedJob {
  readonly receivedAt: string;
  readonly totalRecords?: number;
  readonly totalChunks?: number;
  readonly workers?: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected?: number;
  readonly attempts?: readonly { readonly n: number; readonly trace?: string; readonly startedAt?: string }[];
}

/**
 * The job reached a terminal state: its span (the first attempt: `rowfleet.job`, upload → end) or its retry
 * attempt's (`rowfleet.attempt`, retry → end) is emitted now with the ids chosen when it began. Called once, by
 * the writer that won the terminal transition (the finalize, the split that rejected the file, a cancel or
 * expiry that ended it).
 */
export function endJobSpan(tracing: Tracing | undefined, job: EndedJob, state: string, end: TimeInput): void {
  if (!tracing) return;
  const n = job.attempt ?? 1;
  const attrs = jobAttrs(job, {
    [ATTR.outcome]: state,
    [ATTR.records]: job.totalRecords ?? 0,
    [ATTR.chunks]: job.totalChunks ?? 0,
    [ATTR.workers]: job.workers ?? 0,
    [ATTR.succeeded]: job.succeeded,
    [ATTR.failed]: job.failed,
    [ATTR.rejected]: job.rejected ?? 0,
  });
  const cur = job.attempts?.find((a) => a.n === n);
  const span =
    n > 1
      ? tracing.startPinned(
          'rowfleet.attempt',
          cur?.trace,
          job.trace,
          attrs,
          new Date(cur?.startedAt ?? job.receivedAt),
        )
      : tracing.startPinned('rowfleet.job', job.trace, undefined, attrs, new Date(job.receivedAt));
  if (state === 'FAILED' || state === 'REJECTED')
    span.setStatus({ code: SpanStatusCode.ERROR, message: state });
  span.end(end);
}

export { SpanKind, SpanStatusCode, type Span, type SpanContext, type SpanExporter };
