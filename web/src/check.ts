import { useRef, useState } from 'preact/hooks';
import { ApiError } from './client.ts';
import { checkKey, type CheckState } from './check-rules.ts';
import { useSession } from './session.ts';
import { settings } from './settings.ts';
import type { JobOptions } from './types.ts';

export { checkKey, mayRun, type CheckState } from './check-rules.ts';

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
      // A file above the direct-upload limit cannot be sent to POST /jobs?check=true; its check is the split's.
      if (file.size > settings.directUploadMaxBytes) {
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
