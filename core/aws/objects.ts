import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createPresignedPost, type PresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Readable } from 'node:stream';
import { SourceChangedError } from '../shared/errors.ts';
import { retry } from '../shared/retry.ts';
import { iamRequests, recordAwsCall } from './aws-calls.ts';
import { s3Client } from './clients.ts';

/** A byte range, inclusive (as HTTP Range), and the ETag the object must still have (S3 answers 412 otherwise). */
export interface ReadOptions {
  readonly start: number;
  readonly end?: number;
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412;
}

/** S3's 409 ConditionalRequestConflict: another conditional write to the same key is in progress. */
function isConditionalConflict(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'ConditionalRequestConflict' || e.$metadata?.httpStatusCode === 409;
}

/** S3 operations of the pipeline, on one bucket. */
export class Objects {
  constructor(
    readonly bucket: string,
    private readonly s3: S3Client = s3Client(),
  ) {}

  /** Stores an object; its ETag (what a reader pins its reads to). */
  async put(
    key: string,
    body: Buffer | string,
    contentType = 'application/octet-stream',
  ): Promise<string | undefined> {
    const r = await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
    return r.ETag;
  }

  /**
   * Stores an object only if the key holds none (S3's conditional write, `If-None-Match: *`): true when this call
   * stored it, false when another writer's object was there first — that one is kept, never replaced. A conflict
   * with a concurrent conditional write (409) is asked again: the second answer is 200 or 412. Its body is not
   * hashed into the signature (a worker's parts: a million records' are ~300 MB; see {@link unsignedPayload}).
   */
  async putNew(
    key: string,
    body: Buffer | string,
    contentType = 'application/octet-stream',
  ): Promise<boolean> {
    try {
      await retry(
        () =>
          this.s3.send(
            unsignedPayload(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key: key,
                Body: body,
                ContentType: contentType,
                IfNoneMatch: '*',
              }),
            ),
          ),
        { attempts: 4, delayMs: (n) => 50 * n, retryIf: isConditionalConflict },
      );
      return true;
    } catch (err) {
      if (isPreconditionFailed(err)) return false;
      throw err;
    }
  }

  /** The object as a stream of bytes (never buffered whole). */
  async stream(key: string, range?: ReadOptions, ifMatch?: string): Promise<Readable> {
    return (await this.open(key, range, ifMatch)).body;
  }

  /**
   * The object as a stream, with the ETag of the version being read. With `ifMatch`, S3 refuses (412) unless the
   * object still has that ETag: that is {@link SourceChangedError}.
   */
  async open(key: string, range?: ReadOptions, ifMatch?: string): Promise<{ body: Readable; etag: string }> {
    let r;
    try {
      r = await this.s3.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
          IfMatch: ifMatch,
        }),
      );
    } catch (err) {
      if (ifMatch && isPreconditionFailed(err))
        throw new SourceChangedError(`s3://${this.bucket}/${key} is no longer the version ${ifMatch}`, {
          cause: err,
        });
      throw err;
    }
    if (!r.Body) throw new Error(`s3://${this.bucket}/${key} has no body`);
    return { body: r.Body as Readable, etag: r.ETag ?? '' };
  }

  async bytes(key: string, range?: ReadOptions, ifMatch?: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.stream(key, range, ifMatch)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** A server-side copy (one request, up to 5 GB); the ETag of the copy. */
  async copy(from: string, to: string): Promise<string> {
    const r = await this.s3.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: to,
        CopySource: `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`,
      }),
    );
    return r.CopyObjectResult?.ETag ?? '';
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Deletes keys, 1,000 per request. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const r = await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
        }),
      );
      if (r.Errors?.length)
        throw new Error(`DeleteObjects: ${r.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }

  /**
   * Stores an object of any size: one PutObject up to a part's size, a multipart upload above it (one PutObject
   * takes 5 GB on S3 but less on emulators; a multipart upload has no such limit anywhere).
   */
  async putLarge(key: string, body: Buffer, contentType = 'application/octet-stream'): Promise<void> {
    const upload = this.multipart(key, contentType);
    for (let i = 0; i < body.length; i += 1024 * 1024) await upload.write(body.subarray(i, i + 1024 * 1024));
    await upload.done();
  }

  /**
   * A multipart upload fed through `write` with backpressure; memory stays at partSize × (queueSize + 1).
   * The parts are filled in buffers used again from part to part (see {@link PartsUpload}).
   */
  multipart(
    key: string,
    contentType: string,
    /**
     * Parts uploaded at once (each holds up to 8 MiB in memory): 1 for a second stream beside another. Two by
     * default, not four: a million-record finalize writes its zip here at its memory peak.
     */
    queueSize = 2,
  ): {
    write: (b: Buffer) => Promise<void>;
    /** Completes the upload; the object's ETag. */
    done: () => Promise<string | undefined>;
    abort: () => Promise<void>;
  } {
    const upload = new PartsUpload(this.s3, this.bucket, key, contentType, queueSize);
    return { write: (b) => upload.write(b), done: () => upload.done(), abort: () => upload.abort() };
  }

  presignGet(key: string, expiresIn = 3600, fileName?: string): Promise<string> {
    return getSignedUrl(
      this.s3,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentDisposition: fileName ? `attachment; filename="${fileName}"` : undefined,
      }),
      { expiresIn },
    );
  }

  /** A presigned POST for exactly `key`, at most `maxBytes`, valid `expiresIn` seconds. */
  presignPost(key: string, maxBytes: number, expiresIn: number): Promise<PresignedPost> {
    // S3 authorizes the POST as a PutObject of the signer's role; no client call to record it on.
    for (const call of iamRequests('s3', 'PutObjectCommand', { Bucket: this.bucket, Key: key }))
      recordAwsCall(call);
    return createPresignedPost(this.s3, {
      Bucket: this.bucket,
      Key: key,
      Conditions: [
        ['content-length-range', 1, maxBytes],
        ['eq', '$key', key],
      ],
      Fields: { 'Content-Type': 'text/csv' },
      Expires: expiresIn,
    });
  }
}

/**
 * A request whose body is not hashed into its signature (`x-amz-content-sha256: UNSIGNED-PAYLOAD`, which S3 takes
 * for header-signed requests): the SDK would otherwise SHA-256 every byte of an upload's parts before sending them
 * (a million-record zip and results.csv: ~400 MB, ~0.5 core-second). The bytes travel over TLS to S3, which is what
 * keeps them whole; the signature still covers the method, key, upload and headers.
 */
function unsignedPayload<C extends PutObjectCommand | UploadPartCommand>(command: C): C {
  // The command's own stack typed as the build step sees it (the union of the two commands' stacks has no callable add).
  type Handler = (args: { request: unknown }) => Promise<unknown>;
  const stack = command.middlewareStack as unknown as {
    add(middleware: (next: Handler) => Handler, options: { step: 'build'; name: string }): void;
  };
  stack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'rowfleetUnsignedPayload' },
  );
  return command;
}

/**
 * Bytes of a multipart upload's parts (but its last): the zip, results.csv, the split's UTF-8 copy. The cost
 * estimate (core/intake/estimate.ts) counts requests with it.
 */
export const MULTIPART_PART_BYTES = 8 * 1024 * 1024;
const PART_SIZE = MULTIPART_PART_BYTES;

/**
 * A multipart upload as lib-storage's Upload makes one (the same requests: one PutObject when it all fits in a part,
 * else CreateMultipartUpload, parts of {@link PART_SIZE} but the last, CompleteMultipartUpload; aborted when a part
 * fails), but each part filled in a buffer of a few kept for the upload's life: lib-storage joined every part
 * anew (Buffer.concat), and a finalize's zip and results.csv, hundreds of MB of such buffers that live long enough
 * to be promoted, are what made V8 run a full GC every few parts (external memory counts towards its old
 * generation's limit).
 */
class PartsUpload {
  /** Buffers whose part is sent: the next ones to fill. */
  private readonly free: Buffer[] = [];
  private buffers = 0;
  /** Waiting for a buffer to come back from a part being sent. */
  private waiting: (() => void) | undefined;
  private buf: Buffer | undefined;
  private used = 0;
  private partNumber = 0;
  private uploadId: Promise<string> | undefined;
  private readonly sending = new Set<Promise<void>>();
  private readonly parts: { PartNumber: number; ETag: string }[] = [];
  private failed: unknown;
  private finished = false;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly contentType: string,
    private readonly queueSize: number,
  ) {}

  async write(b: Buffer): Promise<void> {
    try {
      await this.fill(b);
    } catch (err) {
      // A part that failed ends the upload, its parts removed (as lib-storage's does): the caller may not abort.
      if (this.failed) await this.abort().catch(() => undefined);
      throw err;
    }
  }

  private async fill(b: Buffer): Promise<void> {
    let o = 0;
    while (o < b.length) {
      this.check();
      // A full part is sent once more bytes come (as lib-storage does): the last part is never empty.
      if (this.buf && this.used === PART_SIZE) this.send();
      this.buf ??= await this.nextBuffer();
      const n = b.copy(this.buf, this.used, o);
      this.used += n;
      o += n;
    }
  }

  async done(): Promise<string | undefined> {
    if (this.finished) throw new Error(`multipart upload of ${this.key}: done() twice`);
    this.finished = true;
    try {
      if (this.failed) throw this.failed;
      if (this.partNumber === 0) {
        const r = await this.s3.send(
          unsignedPayload(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.key,
              Body: (this.buf ?? Buffer.alloc(0)).subarray(0, this.used),
              ContentType: this.contentType,
            }),
          ),
        );
        return r.ETag;
      }
      if (this.buf) this.send();
      while (this.sending.size > 0) await Promise.all(this.sending);
      if (this.failed) throw this.failed;
      const r = await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          UploadId: await this.uploadId!,
          MultipartUpload: { Parts: [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber) },
        }),
      );
      return r.ETag;
    } catch (err) {
      await this.abort().catch(() => undefined);
      throw err;
    } finally {
      this.free.length = 0;
      this.buf = undefined;
    }
  }

  async abort(): Promise<void> {
    this.failed ??= new Error(`multipart upload of ${this.key} aborted`);
    this.waiting?.();
    await Promise.allSettled(this.sending);
    const id = await this.uploadId?.catch(() => undefined);
    this.uploadId = undefined;
    if (id)
      await this.s3.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: id }),
      );
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.finished) throw new Error(`multipart upload of ${this.key}: written after done()`);
  }

  /** A buffer to fill: a new one while fewer than queueSize + 1 exist, else the next one a sent part gives back. */
  private async nextBuffer(): Promise<Buffer> {
    for (;;) {
      const b = this.free.pop();
      if (b) return b;
      if (this.buffers <= this.queueSize) {
        this.buffers++;
        return Buffer.allocUnsafe(PART_SIZE);
      }
      await new Promise<void>((r) => (this.waiting = r));
      this.waiting = undefined;
      this.check();
    }
  }

  /** Sends the filled buffer as the next part; the buffer comes back to {@link free} once S3 has it. */
  private send(): void {
    const buf = this.buf!;
    const body = buf.subarray(0, this.used);
    const PartNumber = ++this.partNumber;
    this.buf = undefined;
    this.used = 0;
    this.uploadId ??= this.s3
      .send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          ContentType: this.contentType,
        }),
      )
      .then((r) => {
        if (!r.UploadId) throw new Error(`CreateMultipartUpload of ${this.key}: no UploadId`);
        return r.UploadId;
      });
    const sent = (async () => {
      const UploadId = await this.uploadId!;
      const r = await this.s3.send(
        unsignedPayload(
          new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId, PartNumber, Body: body }),
        ),
      );
      if (!r.ETag) throw new Error(`UploadPart ${PartNumber} of ${this.key}: no ETag`);
      this.parts.push({ PartNumber, ETag: r.ETag });
    })()
      .catch((err: unknown) => {
        this.failed ??= err;
      })
      .finally(() => {
        this.sending.delete(sent);
        this.free.push(buf);
        this.waiting?.();
      });
    this.sending.add(sent);
  }
}
