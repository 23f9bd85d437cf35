import { pureProcessor, type RowContext, type RowInput, type RowOutput } from './types.ts';

const keyCache = new WeakMap<readonly string[], string[]>();

function keyPrefixes(header: readonly string[]): string[] {
  let k = keyCache.get(header);
  if (!k) {
    k = header.map((h, i) => (i === 0 ? '{' : ',') + JSON.stringify(h) + ':');
    keyCache.set(header, k);
  }
  return k;
}

function jsonOf(row: RowInput, ctx: Pick<RowContext, 'site' | 'token' | 'header'>): RowOutput[] {
  // Built as text: header names such as "__proto__" stay plain keys, and it is faster than an object.
  const keys = keyPrefixes(ctx.header);
  let s = '';
  for (let i = 0; i < keys.length; i++) s += keys[i]! + JSON.stringify(row.fields[i] ?? '');
  return [{ name: `rows/${row.n}.json`, data: (keys.length === 0 ? '{' : s) + '}' }];
}

/**
 * `rows/<n>.json`: the record as an object keyed by header name, values exactly as decoded. Synchronous and
 * CPU-bound: a record never waits, so the concurrency bound never binds — except under a simulated delay
 * (`--simulate-delay-ms`), a pure wait with nothing behind it, which may run as wide as the stage allows
 * (the default `limits.maxRecordConcurrency`).
 */
export const jsonProcessor = pureProcessor(
  'json',
  'rows/<n>.json: each record as a JSON object keyed by header name',
  jsonOf,
);
