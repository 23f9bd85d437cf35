import { useEffect, useState } from 'preact/hooks';
import { Screen } from '../components.tsx';
import { MESSAGES, useI18n, type MessageKey } from '../i18n.ts';
import { navigate } from '../router.ts';
import { useSession } from '../session.ts';
import { settings } from '../settings.ts';
import { useUploader, UploadStatus } from '../uploader.tsx';
import type { JobOptions } from '../types.ts';

const num = (v: string): number | undefined => (v.trim() === '' ? undefined : Number(v));

export function Upload() {
  const i = useI18n();
  const { t } = i;
  const { api } = useSession();
  const [file, setFile] = useState<File>();
  const [dragging, setDragging] = useState(false);
  const [processor, setProcessor] = useState(settings.defaultProcessor);
  const [office, setOffice] = useState('');
  const [workers, setWorkers] = useState('');
  const [maxFailureRate, setMaxFailureRate] = useState('');
  const [delay, setDelay] = useState('');
  const [errorRate, setErrorRate] = useState('');
  const [offices, setOffices] = useState<string[]>([]);
  const [missing, setMissing] = useState(false);
  const uploader = useUploader();

  // Offices the site's jobs ran for: suggestions for the office field.
  useEffect(() => {
    const ctrl = new AbortController();
    api.listJobs(ctrl.signal).then(
      (jobs) => setOffices([...new Set(jobs.map((j) => j.office).filter((o): o is string => !!o))].sort()),
      () => undefined,
    );
    return () => ctrl.abort();
  }, [api]);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) {
      setMissing(true);
      return;
    }
    const o: JobOptions = {
      processor,
      office: office.trim() || undefined,
      workers: num(workers),
      maxFailureRate: num(maxFailureRate),
      simulateDelayMs: num(delay),
      simulateErrorRate: num(errorRate),
    };
    const token = await uploader.start(file, file.name, o);
    if (token) navigate({ name: 'job', token });
  };

  const pick = (f: File | undefined) => {
    setFile(f);
    setMissing(false);
  };

  const sending = uploader.state.kind === 'sending';
  return (
    <Screen title={t('upload.title')}>
      <form class="card form" onSubmit={submit} noValidate>
        <div
          class={dragging ? 'dropzone dragging' : 'dropzone'}
          data-testid="dropzone"
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            pick(e.dataTransfer?.files[0]);
          }}
        >
          <p class="dropzone-title">{t('upload.drop')}</p>
          <label for="file" class="sr-only">
            {t('upload.choose')}
          </label>
          <input
            id="file"
            type="file"
            accept=".csv,.tsv,.txt,text/csv,text/tab-separated-values,text/plain"
            aria-describedby="file-chosen"
            onChange={(e) => pick(e.currentTarget.files?.[0])}
          />
          <p id="file-chosen" class="help" aria-live="polite">
            {file ? t('upload.selected', { name: file.name, size: i.bytes(file.size) }) : t('upload.none')}
          </p>
          {missing ? (
            <p class="field-error" role="alert">
              {t('upload.needFile')}
            </p>
          ) : null}
        </div>
        <div class="field">
          <label for="processor">{t('upload.processor')}</label>
          <select id="processor" value={processor} onChange={(e) => setProcessor(e.currentTarget.value)}>
            {settings.processors.map((p) => {
              const key = `upload.processor.${p}`;
              return (
                <option key={p} value={p}>
                  {key in MESSAGES.en ? t(key as MessageKey) : p}
                </option>
              );
            })}
          </select>
        </div>
        <div class="field">
          <label for="office">{t('upload.office')}</label>
          <input
            id="office"
            list="offices"
            autocomplete="off"
            aria-describedby="office-help"
            value={office}
            onInput={(e) => setOffice(e.currentTarget.value)}
          />
          <datalist id="offices">
            {offices.map((o) => (
              <option key={o} value={o} />
            ))}
          </datalist>
          <p id="office-help" class="help">
            {t('upload.officeHelp')}
          </p>
        </div>
        <details class="advanced">
          <summary>{t('upload.advanced')}</summary>
          <div class="field">
            <label for="workers">{t('upload.workers')}</label>
            <input
              id="workers"
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              value={workers}
              onInput={(e) => setWorkers(e.currentTarget.value)}
            />
          </div>
          <div class="field">
            <label for="max-failure-rate">{t('upload.maxFailureRate')}</label>
            <input
              id="max-failure-rate"
              type="number"
              min={0}
              max={1}
              step={0.01}
              inputMode="decimal"
              value={maxFailureRate}
              onInput={(e) => setMaxFailureRate(e.currentTarget.value)}
            />
          </div>
          <div class="field">
            <label for="delay">{t('upload.delay')}</label>
            <input
              id="delay"
              type="number"
              min={0}
              max={60000}
              step={1}
              inputMode="numeric"
              value={delay}
              onInput={(e) => setDelay(e.currentTarget.value)}
            />
          </div>
          <div class="field">
            <label for="error-rate">{t('upload.errorRate')}</label>
            <input
              id="error-rate"
              type="number"
              min={0}
              max={1}
              step={0.01}
              inputMode="decimal"
              value={errorRate}
              onInput={(e) => setErrorRate(e.currentTarget.value)}
            />
          </div>
        </details>
        <button type="submit" class="primary" disabled={sending}>
          {t('upload.submit')}
        </button>
      </form>
      <UploadStatus state={uploader.state} onStop={uploader.stop} />
    </Screen>
  );
}
