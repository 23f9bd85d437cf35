import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { directUploadBytes } from '../../../../core/intake/upload-body.ts';
import { BadRequestError } from '../../../../core/shared/errors.ts';

const cp932 = iconv.encode('id,name\r\n1,山田太郎\r\n', 'cp932');

/** The error directUploadBytes throws for a request, or undefined. */
function refusal(r: Parameters<typeof directUploadBytes>[0]): { code: string; status: number } | undefined {
  try {
    directUploadBytes(r);
    return undefined;
  } catch (err) {
    if (!(err instanceof BadRequestError)) throw err;
    return { code: err.code, status: err.status };
  }
}

describe('Function: directUploadBytes', () => {
  it('gives back the bytes of a base64 body of a binary media type, whatever the header spelling', () => {
    // Act
    const bytes = directUploadBytes({
      headers: { 'Content-Type': 'text/csv; charset=shift_jis' },
      body: cp932.toString('base64'),
      isBase64Encoded: true,
    });

    // Assess
    expect(bytes.equals(cp932)).toBe(true);
  });

  it('refuses with 415 a text/csv body that arrived as decoded text (API Gateway matched no binary type)', () => {
    // Act
    const r = refusal({
      headers: { 'content-type': 'text/csv' },
      body: cp932.toString('utf8'),
      isBase64Encoded: false,
    });

    // Assess
    expect(r).toEqual({ code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 });
  });

  it.each([['application/x-www-form-urlencoded'], ['text/plain;charset=UTF-8'], ['']])(
    'refuses with 415 the Content-Type "%s", even base64-encoded, naming text/csv',
    (type) => {
      // Act
      let message = '';
      try {
        directUploadBytes({ headers: { 'content-type': type }, body: 'aWQK', isBase64Encoded: true });
      } catch (err) {
        message = (err as Error).message;
      }

      // Assess
      expect(message).toContain('text/csv');
      expect(refusal({ headers: { 'content-type': type }, body: 'aWQK', isBase64Encoded: true })).toEqual({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        status: 415,
      });
    },
  );
});
