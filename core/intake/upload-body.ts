import { BINARY_MEDIA_TYPES, isBinaryMediaType } from '../../config/routes.ts';
import { BadRequestError } from '../shared/errors.ts';

/** What the upload route knows of a request's body: its Content-Type and the body as API Gateway passed it. */
export interface RawUploadBody {
  readonly headers: Readonly<Record<string, string | undefined>> | null;
  readonly body: string | null;
  readonly isBase64Encoded: boolean;
}

/** A header by name, whatever its case (API Gateway's REST proxy event keeps the client's spelling). */
function header(headers: RawUploadBody['headers'], name: string): string | undefined {
  const key = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers![key];
}

/**
 * The CSV of `POST /jobs` as the bytes the caller sent, or a 415. API Gateway (REST) passes a body whose
 * Content-Type is one of the API's binary media types (config/routes.ts) base64-encoded and unchanged; any other
 * body reaches the function as a UTF-8 string, already decoded: a CP932 file is then U+FFFD where its Japanese
 * was, and no job may be built from it. So the upload takes those types only, and a non-empty body that did
 * not arrive base64-encoded (whatever its declared type) is refused too. The local API passes bodies by the
 * same rule, so both answer alike.
 */
export function directUploadBytes(r: RawUploadBody, route = 'POST /jobs'): Buffer {
  const type = header(r.headers, 'content-type');
  const hasBody = r.body !== null && r.body !== '';
  if (!isBinaryMediaType(type) || (hasBody && !r.isBase64Encoded)) {
    const sent = type ? `"${type.slice(0, 100)}"` : 'none';
    throw new BadRequestError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${route} takes the file as bytes: send it with Content-Type: text/csv (or ${BINARY_MEDIA_TYPES.slice(1).join(', ')}), e.g. curl --data-binary @file.csv -H 'content-type: text/csv'. A body of another type (here ${sent}) is passed on as decoded text, not as the bytes sent.`,
      415,
    );
  }
  return hasBody ? Buffer.from(r.body!, 'base64') : Buffer.alloc(0);
}
