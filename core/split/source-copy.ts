import type { Objects } from '../aws/objects.ts';
import { keys } from '../jobs/keys.ts';
import type { DecodeInfo } from '../source/decode.ts';

/** UTF-8 uploads are read by the workers as they are; any other encoding through a transcoded copy. */
export const isUtf8Upload = (e: string | undefined): boolean => e === 'utf-8' || e === 'utf-8-bom';

/** Bytes held while the encoding is still open (ASCII so far) before they go to the copy anyway. */
const HOLD_UNDECIDED_BYTES = 16 * 1024 * 1024;

/**
 * The UTF-8 copy of a CP932 or UTF-16 upload, written while the split reads it (one pass). Workers read ranges
 * of UTF-8: the upload itself when it is UTF-8, else this copy holding every byte the parser saw. Until the
 * decoder has seen a non-ASCII byte the encoding is open (ASCII reads the same either way): those bytes are
 * held, up to a bound, then written to the copy too.
 */
export class Utf8SourceCopy {
  private copy: ReturnType<Objects['multipart']> | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(
    private readonly objects: Objects,
    private readonly site: string,
    private readonly token: string,
    private readonly info: DecodeInfo,
  ) {}

  /** The decoded bytes as they go by, copied when the upload is not UTF-8. */
  async *tee(utf8: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of utf8) {
      if (this.info.encoding === undefined) {
        this.held.push(b);
        this.heldBytes += b.length;
        if (this.copy || this.heldBytes > HOLD_UNDECIDED_BYTES) await this.start();
      } else if (!isUtf8Upload(this.info.encoding)) {
        await this.start();
        await this.copy!.write(b);
      } else {
        this.held.length = 0;
        this.heldBytes = 0;
      }
      yield b;
    }
  }

  /**
   * Once the whole file is read: the key workers read ranges of, its ETag (the version the split saw, pinned on
   * every range read), and the shift of its offsets (the BOM bytes the upload keeps and the parser did not see).
   * The copy is completed, or dropped for a UTF-8 upload.
   */
  async finish(source: { key: string; etag: string }): Promise<{ key: string; etag: string; shift: number }> {
    if (isUtf8Upload(this.info.encoding)) {
      await this.copy?.abort();
      return { key: source.key, etag: source.etag, shift: this.info.bomBytes ?? 0 };
    }
    await this.start();
    const etag = (await this.copy!.done()) ?? '';
    return { key: keys.utf8Source(this.site, this.token), etag, shift: 0 };
  }

  async abort(): Promise<void> {
    await this.copy?.abort();
  }

  private async start(): Promise<void> {
    this.copy ??= this.objects.multipart(keys.utf8Source(this.site, this.token), 'text/csv; charset=utf-8');
    for (const h of this.held.splice(0)) await this.copy.write(h);
    this.heldBytes = 0;
  }
}
