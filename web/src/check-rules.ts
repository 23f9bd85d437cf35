/** When Run may start: pure rules of the Upload → Check → Run screen (no DOM; unit-tested in Node). */
import type { CheckResult, JobOptions } from './types.ts';

/** What the check was asked about: the file (by name, size, time) and the options. A change asks for a new check. */
export const checkKey = (
  file: { readonly name: string; readonly size: number; readonly lastModified: number },
  o: JobOptions,
): string => JSON.stringify([file.name, file.size, file.lastModified, o]);

export type CheckState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'checking'; readonly key: string }
  | { readonly kind: 'done'; readonly key: string; readonly result: CheckResult }
  | { readonly kind: 'failed'; readonly key: string; readonly error: Error };

/**
 * Whether `state` lets the run of `key` (the file and options now chosen) start: its check passed, or the file is
 * too large to be checked before its run (413: the split checks it).
 */
export function mayRun(state: CheckState, key: string | undefined): boolean {
  if (!key || !('key' in state) || state.key !== key) return false;
  if (state.kind === 'done') return state.result.ok;
  // The API's 413 (an ApiError; this module reads only its status, so Node's type-check needs no DOM types).
  return state.kind === 'failed' && (state.error as { status?: number }).status === 413;
}
