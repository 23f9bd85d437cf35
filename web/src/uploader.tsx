import { useRef, useState } from 'preact/hooks';
import { ApiError } from './client.ts';
import { ErrorBox } from './components.tsx';
import { useI18n } from './i18n.ts';
import { href } from './router.ts';
import { useSession } from './session.ts';
import { settings } from './settings.ts';
import type { JobOptions } from './types.ts';

export type UploadState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'sending'; readonly fileName: string; readonly loaded: number; readonly total: number }
  | { readonly kind: 'failed'; readonly error: Error }
  | { readonly kind: 'started'; readonly token: string; readonly presigned: boolean };

/** Uploads a file the way its size calls for (POST /jobs or presigned POST), with progress. */
export function useUploader() {
  const { api } = useSession();
  const [state, setState] = useState<UploadState>({ kind: 'idle' });
  const ctrl = useRef<AbortController | undefined>(undefined);

  const start = async (file: Blob, fileName: string, o: JobOptions): Promise<string | undefined> => {
    ctrl.current = new AbortController();
    setState({ kind: 'sending', fileName, loaded: 0, total: file.size });
    try {
      const token = await api.upload(
        file,
        fileName,
        o,
        settings.directUploadMaxBytes,
        (loaded, total) => setState({ kind: 'sending', fileName, loaded, total }),
        ctrl.current.signal,
      );
      setState({ kind: 'started', token, presigned: file.size > settings.directUploadMaxBytes });
      return token;
    } catch (err) {
      setState({ kind: 'failed', error: err as Error });
      return undefined;
    }
  };
  return { state, start, stop: () => ctrl.current?.abort() };
}

/** The upload's progress bar, its outcome, or the rejection with code, message and line. */
export function UploadStatus({ state, onStop }: { state: UploadState; onStop: () => void }) {
  const i = useI18n();
  const { t } = i;
  if (state.kind === 'idle') return null;
  if (state.kind === 'sending') {
    const percent = state.total ? Math.floor((state.loaded / state.total) * 100) : 0;
    return (
      <div class="upload-progress">
        <label for="upload-progress">{t('upload.progress')}</label>
        <progress id="upload-progress" max={100} value={percent}>
          {percent} %
        </progress>
        <p role="status" aria-live="polite">
          {t('upload.sending', { file: state.fileName, percent })}
        </p>
        <button type="button" onClick={onStop}>
          {t('upload.cancel')}
        </button>
      </div>
    );
  }
  if (state.kind === 'failed') {
    const rejected = state.error instanceof ApiError && state.error.status === 422;
    const job = state.error instanceof ApiError ? state.error.job : undefined;
    return (
      <div>
        <ErrorBox title={rejected ? t('upload.rejected') : t('upload.failed')} error={state.error} />
        {job ? (
          <p>
            <a href={href({ name: 'job', token: job.token })}>{t('upload.open', { token: job.token })}</a>
          </p>
        ) : null}
      </div>
    );
  }
  const limit = i.bytes(settings.directUploadMaxBytes);
  return (
    <p role="status">
      {t('upload.started')} {t(state.presigned ? 'upload.via.presigned' : 'upload.via.direct', { limit })}{' '}
      <a href={href({ name: 'job', token: state.token })}>{t('upload.open', { token: state.token })}</a>
    </p>
  );
}
