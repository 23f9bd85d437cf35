import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './client.ts';

export interface Loaded<T> {
  readonly data?: T;
  readonly error?: ApiError | Error;
  /** When the last answer arrived (ms since the epoch). */
  readonly at?: number;
}

/**
 * Loads with `load` now and then every `intervalMs` while `active(data)` holds (polling, no reload);
 * stops on unmount or when `key` changes. A hidden tab polls too, only less often.
 */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  intervalMs: number,
  key: string,
  active: (data: T | undefined) => boolean = () => true,
): Loaded<T> & { reload: () => void } {
  const [state, setState] = useState<Loaded<T>>({});
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const activeRef = useRef(active);
  activeRef.current = active;

  useEffect(() => {
    setState({});
  }, [key]);

  useEffect(() => {
    const ctrl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      let data: T | undefined;
      try {
        data = await loadRef.current(ctrl.signal);
        if (ctrl.signal.aborted) return;
        setState({ data, at: Date.now() });
      } catch (err) {
        if (ctrl.signal.aborted) return;
        setState((s) => ({ ...s, error: err as Error, at: Date.now() }));
        // A 4xx will not mend by asking again.
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) return;
      }
      if (!activeRef.current(data)) return;
      timer = setTimeout(run, document.hidden ? intervalMs * 5 : intervalMs);
    };
    void run();
    return () => {
      ctrl.abort();
      if (timer) clearTimeout(timer);
    };
  }, [key, tick, intervalMs]);

  return { ...state, reload: () => setTick((t) => t + 1) };
}

/**
 * Actions the user starts from a button (cancel, retry, download, send, load more): which one runs now (its button
 * disabled, its label saying so) and the error of the last one, cleared when the next starts.
 */
export function useAction<K extends string>() {
  const [busy, setBusy] = useState<K>();
  const [error, setError] = useState<Error>();
  const run = async (kind: K, act: () => Promise<void>) => {
    setBusy(kind);
    setError(undefined);
    try {
      await act();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(undefined);
    }
  };
  return { busy, error, run };
}
