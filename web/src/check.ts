import { useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';
import { useSession } from './session.ts';
import { settings } from './settings.ts';
import type { CheckResult, JobOptions } from './types.ts';

/** What the check was asked about: the file (by name, size, time) and the options. A change asks for a new check. */
export const checkKey = (file: File, o: JobOptions): string =>
  JSON.stringify([file.name, file.size, file.lastModified, o]);

export type CheckState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'checking'; readonly key: string }
  | { readonly kind: 'done'; readonly key: string; readonly result: CheckResult }
  | { readonly kind: 'failed'; readonly key: string; readonly error: Error };

/** A file above the direct-upload limit cannot be sent to POST /jobs?check=true; its check is the split's. */
export const tooLargeToCheck = (file: File): boolean => file.size > settings.directUploadMaxBytes;

/** Whether `state` lets the run start for `key`: its check passed (or the file is too large to be checked here). */
export function mayRun(state: CheckState, key: string | undefined): boolean {
  if (!key || !('key' in state) || state.key !== key) return false;
  if (state.kind === 'done') return state.result.ok;
  return state.kind === 'failed' && state.error instanceof ApiError && state.error.status === 413;
}

/** POST /jobs?check=true for a file and its options; the last answer, kept with what it was about. */
export function useCheck() {
  const { api } = useSession();
  const [state, setState] = useState<CheckState>({ kind: 'idle' });
  const ctrl = useRef<AbortController | undefined>(undefined);
  const check = async (file: File, o: JobOptions) => {
    ctrl.current?.abort();
    const c = (ctrl.current = new AbortController());
    const key = checkKey(file, o);
    setState({ kind: 'checking', key });
    try {
      if (tooLargeToCheck(file)) {
        throw new ApiError(413, 'TOO_LARGE_TO_CHECK', `${file.size}`);
      }
      const result = await api.checkFile(file, file.name, o, c.signal);
      if (!c.signal.aborted) setState({ kind: 'done', key, result });
    } catch (err) {
      if (!c.signal.aborted) setState({ kind: 'failed', key, error: err as Error });
    }
  };
  return { state, check };
}
