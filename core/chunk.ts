import type { CsvRecord } from './csv.ts';

/** One queue message: many records up to a byte budget (SQS bills per request and per 64 KiB). */
export interface ChunkMessage {
  readonly v: 1;
  readonly site: string;
  readonly token: string;
  readonly chunk: number;
  /** [n, line, fields] */
  readonly records: [number, number, string[]][];
}

export interface ChunkLimits {
  readonly maxBytes: number;
  readonly maxRecords: number;
}

/**
 * Packs records into message bodies. `add` returns a finished body when the next record would not fit.
 * Bodies are JSON: control characters are escaped, so any decoded text is valid SQS message content.
 */
export class Chunker {
  private parts: string[] = [];
  private bytes = 0;
  private next = 0;
  private readonly prefix: (chunk: number) => string;

  constructor(
    site: string,
    token: string,
    private readonly limits: ChunkLimits,
  ) {
    const head = `{"v":1,"site":${JSON.stringify(site)},"token":${JSON.stringify(token)},"chunk":`;
    this.prefix = (chunk) => `${head}${chunk},"records":[`;
  }

  /** Number of chunks emitted so far. */
  get chunks(): number {
    return this.next;
  }

  add(record: CsvRecord): string | undefined {
    const s = JSON.stringify([record.n, record.line, record.fields]);
    const size = Buffer.byteLength(s) + 1;
    if (size + 128 > this.limits.maxBytes) {
      // The record alone exceeds the budget; RECORD_TOO_LARGE guards this in practice.
      throw new Error(`record ${record.n} does not fit in a message (${size} bytes)`);
    }
    let out: string | undefined;
    if (
      this.parts.length > 0 &&
      (this.bytes + size + 128 > this.limits.maxBytes || this.parts.length >= this.limits.maxRecords)
    ) {
      out = this.flush();
    }
    this.parts.push(s);
    this.bytes += size;
    return out;
  }

  flush(): string | undefined {
    if (this.parts.length === 0) return undefined;
    const body = this.prefix(this.next++) + this.parts.join(',') + ']}';
    this.parts = [];
    this.bytes = 0;
    return body;
  }
}

export function decodeChunk(body: string): ChunkMessage {
  const msg = JSON.parse(body) as Partial<ChunkMessage>;
  if (
    msg.v !== 1 ||
    typeof msg.site !== 'string' ||
    typeof msg.token !== 'string' ||
    typeof msg.chunk !== 'number' ||
    !Array.isArray(msg.records)
  ) {
    throw new Error('not a Rowfleet chunk message');
  }
  return msg as ChunkMessage;
}
