import { createHash, createHmac } from 'node:crypto';
import { SignatureV4, type SignatureV4CryptoInit, type SignatureV4Init } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';

/**
 * A SigV4 signer hashing with node:crypto: what the X-Ray span exporter signs its requests with, and what the
 * local runtime's emulator gate checks the SDK's signatures with (the same signer the SDK uses, so both agree
 * with AWS by construction).
 */
export function sigV4Signer(init: SignatureV4Init): SignatureV4 {
  return new SignatureV4({ ...init, sha256: Sha256 } satisfies SignatureV4Init & SignatureV4CryptoInit);
}

/** node:crypto in the shape @smithy/signature-v4 takes (a hash, or an HMAC when given a key). */
class Sha256 {
  private readonly h;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {
    throw new Error('not supported');
  }
}

const bytes = (d: SourceData): string | Uint8Array =>
  typeof d === 'string'
    ? d
    : ArrayBuffer.isView(d)
      ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
      : new Uint8Array(d);
