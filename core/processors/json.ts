import { pureProcessor, type RowContext, type RowInput, type RowOutput } from './types.ts';

/** Per header: each key's text before its value (`{"id":` then `,"name":` …), and the same with the value's quote. */
const keyCache = new WeakMap<readonly string[], { keys: string[]; quoted: string[] }>();

function keyPrefixes(header: readonly string[]): { keys: string[]; quoted: string[] } {
  let k = keyCache.get(header);
  if (!k) {
    const keys = header.map((h, i) => (i === 0 ? '{' : ',') + JSON.stringify(h) + ':');
    k = { keys, quoted: keys.map((key) => key + '"') };
    keyCache.set(header, k);
  }
  return k;
}

/**
 * Whether `JSON.stringify(v)` is `v` in quotes: nothing in it needs an escape (a quote, a backslash, a control
 * character, a surrogate — paired ones too, left to JSON.stringify), which most values are; a JSON.stringify call
 * per value was most of a json row's cost.
 */
function plainJson(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/** The json processor's text for a record: `{"<key>":"<value>",…}`, the values as JSON.stringify writes them. */
export function jsonText(header: readonly string[], fields: readonly string[]): string {
  // Built as text: header names such as "__proto__" stay plain keys, and it is faster than an object. A plain
  // value is appended after its key's text with the opening quote, piece by piece: no quoted copy of it is made.
  const { keys, quoted } = keyPrefixes(header);
  if (keys.length === 0) return '{}';
  let s = '';
  for (let i = 0; i < keys.length; i++) {
    const v = fields[i] ?? '';
    if (plainJson(v)) {
      s += quoted[i]!;
      s += v;
      s += '"';
    } else {
      s += keys[i]!;
      s += JSON.stringify(v);
    }
  }
  return s + '}';
}

function jsonOf(row: RowInput, ctx: Pick<RowContext, 'site' | 'token' | 'header'>): RowOutput[] {
  return [{ name: `rows/${row.n}.json`, data: jsonText(ctx.header, row.fields) }];
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
