/**
 * The embedded S3 (fauxqs's store): objects written through to the state directory and loaded back on start,
 * multipart uploads completed with S3's ETag from the parts' digests, ObjectCreated events for new uploads,
 * presigned POST uploads with the bucket's CORS rule.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative, resolve, sep } from 'node:path';
import type { buildApp } from 'fauxqs';
import { handlePresignedPost } from '../presigned-post.ts';
import { ATOMIC_TMP } from '../../core/shared/atomic-write.ts';
import type { FileWriter } from './persistence.ts';

// fauxqs does not export its store classes from the package root; they are plain modules in dist.
import { S3Store } from '../../node_modules/fauxqs/dist/s3/s3Store.js';
import { S3Error } from '../../node_modules/fauxqs/dist/common/errors.js';

interface StoredUpload {
  bucket: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  parts: Map<number, { body: Buffer; etag: string }>;
}

/**
 * fauxqs's CompleteMultipartUpload with the same checks, object and ETag (the MD5 of the parts' MD5 digests, "-N"),
 * but taking each part's digest from the ETag it got at UploadPart instead of hashing every part again: for a
 * job's zip that was a second MD5 pass over the whole archive at the end of the finalize (0.44 s of the emulator's
 * CPU profile in one `npm run bench` run at 1M records).
 */
function completeFromPartDigests(store: S3Store): S3Store['completeMultipartUpload'] {
  const internals = store as unknown as {
    multipartUploads: Map<string, StoredUpload>;
    multipartUploadsByBucket: Map<string, Set<string>>;
    buckets: Map<string, Map<string, unknown>>;
  };
  const noSuchUpload = () =>
    new S3Error(
      'NoSuchUpload',
      'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      404,
    );
  const invalidPart = () =>
    new S3Error(
      'InvalidPart',
      "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
      400,
    );
  return (uploadId, specs) => {
    const upload = internals.multipartUploads.get(uploadId);
    if (!upload) throw noSuchUpload();
    const objects = internals.buckets.get(upload.bucket);
    if (!objects)
      throw new S3Error('NoSuchBucket', `The specified bucket does not exist: ${upload.bucket}`, 404);
    for (let i = 1; i < specs.length; i++) {
      if (specs[i]!.partNumber <= specs[i - 1]!.partNumber)
        throw new S3Error(
          'InvalidPartOrder',
          'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
          400,
        );
    }
    const parts = specs.map((spec) => {
      const part = upload.parts.get(spec.partNumber);
      if (!part || spec.etag.replaceAll('"', '') !== part.etag.replaceAll('"', '')) throw invalidPart();
      return part;
    });
    if (parts.slice(0, -1).some((p) => p.body.length < S3_MIN_PART_BYTES))
      throw new S3Error(
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed size',
        400,
      );
    const body = Buffer.concat(parts.map((p) => p.body));
    const digests = Buffer.concat(parts.map((p) => Buffer.from(p.etag.replaceAll('"', ''), 'hex')));
    const obj = {
      key: upload.key,
      body,
      contentType: upload.contentType,
      contentLength: body.length,
      etag: `"${createHash('md5').update(digests).digest('hex')}-${specs.length}"`,
      lastModified: new Date(),
      metadata: upload.metadata,
    };
    objects.set(upload.key, obj);
    internals.multipartUploads.delete(uploadId);
    internals.multipartUploadsByBucket.get(upload.bucket)?.delete(uploadId);
    return obj;
  };
}

/** S3 requires every part but the last to be 5 MiB or more (checked at CompleteMultipartUpload, as S3 does). */
const S3_MIN_PART_BYTES = 5 * 1024 * 1024;

/** S3 store that writes through to the state directory and raises S3 events for new uploads. */
export function persistentS3Store(
  root: string | undefined,
  files: FileWriter,
  onCreated: (bucket: string, key: string, size: number) => void,
): S3Store {
  const store = new S3Store();
  const file = (bucket: string, key: string) => {
    const p = resolve(root!, bucket, key);
    if (!p.startsWith(resolve(root!, bucket) + sep))
      throw new Error(`refusing key outside the bucket: ${key}`);
    return p;
  };
  const put = store.putObject.bind(store);
  store.putObject = (bucket, key, body, contentType, metadata) => {
    const obj = put(bucket, key, body, contentType, metadata);
    if (root) files.write(file(bucket, key), body);
    onCreated(bucket, key, body.length);
    return obj;
  };
  const complete = completeFromPartDigests(store);
  store.completeMultipartUpload = (uploadId, parts) => {
    const upload = (
      store as unknown as { multipartUploads: Map<string, { bucket: string; key: string }> }
    ).multipartUploads.get(uploadId);
    const obj = complete(uploadId, parts);
    if (upload) {
      if (root) files.write(file(upload.bucket, upload.key), obj.body);
      onCreated(upload.bucket, upload.key, obj.body.length);
    }
    return obj;
  };
  const del = store.deleteObject.bind(store);
  store.deleteObject = (bucket, key) => {
    del(bucket, key);
    if (root) files.remove(file(bucket, key));
  };
  if (root && existsSync(root)) {
    for (const bucket of readdirSync(root)) {
      store.createBucket(bucket);
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const p = join(dir, name);
          if (statSync(p).isDirectory()) walk(p);
          else if (!ATOMIC_TMP.test(name))
            put(bucket, relative(join(root, bucket), p).split(sep).join('/'), readFileSync(p));
        }
      };
      walk(join(root, bucket));
    }
  }
  return store;
}

/**
 * S3's conditional write, which fauxqs 1.9 lacks: a PutObject with `If-None-Match: *` on a key that holds an object,
 * or that another conditional write is storing at this moment, answers 412 PreconditionFailed and stores nothing
 * (AWS may answer a concurrent one 409, which core/aws/objects.ts asks again; here the second is told 412 at once).
 * The check runs after the body is read, right before fauxqs's handler stores it: nothing else runs in between
 * for the same key, because a key being stored is held until its answer is sent.
 */
export function serveConditionalPuts(app: ReturnType<typeof buildApp>, s3Store: S3Store): void {
  const objects = (s3Store as unknown as { buckets: Map<string, Map<string, unknown>> }).buckets;
  const storing = new Set<string>();
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'PUT' || request.headers['if-none-match'] !== '*') return;
    const query = request.query as Record<string, unknown>;
    // UploadPart takes no condition (a part is not an object).
    if ('partNumber' in query || 'uploadId' in query) return;
    const { bucket, '*': key } = request.params as { bucket?: string; '*'?: string };
    if (!bucket || !key) return;
    const id = `${bucket}/${key}`;
    if (storing.has(id) || objects.get(bucket)?.has(key))
      throw new S3Error(
        'PreconditionFailed',
        'At least one of the pre-conditions you specified did not hold',
        412,
        `/${bucket}/${key}`,
      );
    storing.add(id);
    // Held until the answer is sent, or the connection is gone without one.
    reply.raw.once('close', () => storing.delete(id));
  });
}

/**
 * The embedded bucket's CORS rule for presigned POSTs from a browser: what AWS answers with the stage bucket's rule
 * (POST from the console's origin, any header), for any loopback origin — the console is served by the local API,
 * on a port the emulator does not know when it starts, and nothing but this machine reaches the emulator. Other
 * origins get no CORS headers (the browser refuses the upload), as from a bucket without a matching rule.
 */
export function corsHeaders(origin: string | string[] | undefined): Record<string, string> | undefined {
  if (typeof origin !== 'string') return undefined;
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return undefined;
  }
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) return undefined;
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

/** The S3 event notification AWS sends for an object created by a POST upload. */
export function objectCreatedEvent(region: string, bucket: string, key: string, size: number) {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Post',
        s3: {
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size },
        },
      },
    ],
  };
}

/**
 * Answers what fauxqs does not: a browser's CORS preflight of a presigned POST (the bucket's rule,
 * lib/rowfleet-stack.ts on AWS) and the POST upload itself, checked against its signed policy (presigned-post.ts).
 */
export function servePostUploads(
  app: ReturnType<typeof buildApp>,
  s3Store: S3Store,
  secretAccessKey: string,
): void {
  app.addHook('onRequest', async (request, reply) => {
    const ct = request.headers['content-type'] ?? '';
    const m = /^\/([^/?]+)\/?(\?.*)?$/.exec(request.url);
    const cors = corsHeaders(request.headers.origin);
    // The bucket's CORS rule (lib/rowfleet-stack.ts on AWS): a browser's preflight of a presigned POST.
    if (request.method === 'OPTIONS' && m) {
      if (!cors) return reply.status(403).send();
      const asked = request.headers['access-control-request-headers'];
      return reply
        .status(204)
        .headers({
          ...cors,
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': typeof asked === 'string' && asked ? asked : '*',
          'access-control-max-age': '3600',
        })
        .send();
    }
    if (request.method !== 'POST' || !ct.startsWith('multipart/form-data') || !m) return;
    const bucket = decodeURIComponent(m[1]!);
    const r = await handlePresignedPost(request.raw, bucket, secretAccessKey, (key, body, contentType) =>
      s3Store.putObject(bucket, key, body, contentType),
    );
    return reply
      .status(r.status)
      .headers({ 'content-type': 'application/xml', ...(cors ?? {}) })
      .send(r.body);
  });
}
