import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToMilliseconds, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { siteId } from '../../config/schema.ts';
import { ATTR } from './trace.ts';

/**
 * The local runtime's span store: one JSON line per span in `<stateDir>/traces/<site>/<token>.jsonl`, appended by
 * every process of the runtime (the functions, the workers) — no collector to start. A batch's lines for one job
 * go in one append (O_APPEND: concurrent writers stay line-atomic on a local file system); a reader skips a line
 * cut short by a process killed mid-write.
 */

/** One span as the store keeps it: OTLP's fields, times in epoch milliseconds. */
export interface SpanRecord {
  readonly v: 1;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly start: number;
  readonly end: number;
  readonly status: { readonly code: number; readonly message?: string };
  readonly attrs: Attributes;
  readonly links: readonly {
    readonly traceId: string;
    readonly spanId: string;
    readonly attrs?: Attributes;
  }[];
  readonly service?: string;
}

const TOKEN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The file of a job's spans. Site and token come from span attributes and from callers: both are checked (the
 * site id schema, a UUID token) so no value can name a path outside `root`. Undefined for anything else.
 */
export function traceFile(root: string, site: unknown, token: unknown): string | undefined {
  if (typeof site !== 'string' || typeof token !== 'string') return undefined;
  if (!siteId.safeParse(site).success || !TOKEN.test(token)) return undefined;
  return join(root, site, `${token}.jsonl`);
}

export function spanRecord(s: ReadableSpan): SpanRecord {
  const parent = s.parentSpanContext?.spanId;
  return {
    v: 1,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    name: s.name,
    kind: s.kind,
    start: hrTimeToMilliseconds(s.startTime),
    end: hrTimeToMilliseconds(s.endTime),
    status: s.status.message ? { code: s.status.code, message: s.status.message } : { code: s.status.code },
    attrs: s.attributes,
    links: s.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      ...(l.attributes ? { attrs: l.attributes } : {}),
    })),
    service: s.resource.attributes['service.name'] as string | undefined,
  };
}

/** Writes each exported span to its job's file (spans naming no valid site and token are dropped). */
export class JobFileExporter implements SpanExporter {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly root: string) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const files = new Map<string, string[]>();
    for (const s of spans) {
      const file = traceFile(this.root, s.attributes[ATTR.site], s.attributes[ATTR.token]);
      if (!file) continue;
      let lines = files.get(file);
      if (!lines) files.set(file, (lines = []));
      lines.push(JSON.stringify(spanRecord(s)) + '\n');
    }
    const p = Promise.all(
      [...files].map(async ([file, lines]) => {
        await mkdir(join(file, '..'), { recursive: true, mode: 0o700 });
        await appendFile(file, lines.join(''), { flag: 'a', mode: 0o600 });
      }),
    ).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (error: unknown) => done({ code: ExportResultCode.FAILED, error: error as Error }),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.pending);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
  }
}

/** Reads a job's spans from the store (none when it has no file); a torn last line and repeated spans are skipped. */
export async function readSpans(root: string, site: string, token: string): Promise<SpanRecord[]> {
  const file = traceFile(root, site, token);
  if (!file) return [];
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const seen = new Set<string>();
  const out: SpanRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let r: SpanRecord;
    try {
      r = JSON.parse(line) as SpanRecord;
    } catch {
      continue;
    }
    // Never another site's or job's span, even if one were written here.
    if (r.v !== 1 || r.attrs[ATTR.site] !== site || r.attrs[ATTR.token] !== token || seen.has(r.spanId))
      continue;
    seen.add(r.spanId);
    out.push(r);
  }
  return out;
}

/** Where a job's spans are read from (the local span store); on AWS there is none (CloudWatch has them). */
export interface TraceStore {
  read(site: string, token: string): Promise<SpanRecord[]>;
}

export const fileTraceStore = (root: string): TraceStore => ({
  read: (site, token) => readSpans(root, site, token),
});
