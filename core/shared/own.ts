/**
 * `record[key]` for a key a user supplied (a template, a site, an office, an option): only the record's own
 * properties, never what its prototype has (`constructor`, `__proto__`, `toString`, `hasOwnProperty`,
 * `valueOf`, …), which a plain `record[key]` would answer with a function or an object.
 */
export function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Characters of a caller's id that a message repeats at most (a 404 for an 8,000-character id stays short). */
export const ECHOED_ID_MAX = 100;

/** A caller's id as an error message repeats it: at most {@link ECHOED_ID_MAX} characters, then `…`. */
export function echoed(id: string, max = ECHOED_ID_MAX): string {
  const chars = [...id];
  return chars.length <= max ? id : `${chars.slice(0, max).join('')}…`;
}
