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

/**
 * `JSON.stringify(v)` for a string: the text quoted as it is when nothing in it needs an escape (a quote, a
 * backslash, a control character, a surrogate — paired ones too, left to JSON.stringify), which most values are;
 * a JSON.stringify call per value was most of a json row's cost.
 */
export function jsonString(v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(v);
  }
  return `"${v}"`;
}

function jsonOf(row: RowInput, ctx: Pick<RowContext, 'site' | 'token' | 'header'>): RowOutput[] {
  // Built as text: header names such as "__proto__" stay plain keys, and it is faster than an object.
  const keys = keyPrefixes(ctx.header);
  let s = '';
  for (let i = 0; i < keys.length; i++) s += keys[i]! + jsonString(row.fields[i] ?? '');
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
