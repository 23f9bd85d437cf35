import { useState } from 'preact/hooks';
import { Screen } from '../components.tsx';
import { checkKey, mayRun, useCheck } from '../check.ts';
import { CheckReport } from '../check-report.tsx';
import { FilePicker } from '../file-picker.tsx';
import { useI18n } from '../i18n.ts';
import { navigate } from '../router.ts';
import { OptionFields, useOptionValues } from '../upload-options.tsx';
import { useUploader, UploadStatus } from '../uploader.tsx';

/**
 * Upload → Check → Run: the file and its options are checked first (POST /jobs?check=true: what is missing, three
 * rendered samples, the estimate; no job), and the run starts only from a check that passed for this very file
 * and these options.
 */
export function Upload() {
  const { t } = useI18n();
  const [file, setFile] = useState<File>();
  const [missing, setMissing] = useState(false);
  const opts = useOptionValues();
  const checker = useCheck();
  const uploader = useUploader();
  const key = file ? checkKey(file, opts.options) : undefined;
  const ready = mayRun(checker.state, key);
  const sending = uploader.state.kind === 'sending';
  const checking = checker.state.kind === 'checking';

  const check = () => {
    if (!file) {
      setMissing(true);
      return;
    }
    void checker.check(file, opts.options);
  };
  const run = async (e: Event) => {
    e.preventDefault();
    if (!file || !ready) return;
    const token = await uploader.start(file, file.name, opts.options);
    if (token) navigate({ name: 'job', token });
  };

  return (
    <Screen title={t('upload.title')}>
      <form class="card form" onSubmit={run} noValidate>
        <FilePicker
          file={file}
          missing={missing}
          onPick={(f) => {
            setFile(f);
            setMissing(false);
          }}
        />
        <OptionFields values={opts.values} set={opts.set} />
        <p id="run-help" class="help">
          {t('upload.runHelp')}
        </p>
        <div class="buttons">
          <button type="button" class={ready ? '' : 'primary'} disabled={checking || sending} onClick={check}>
            {checking ? t('check.checking') : t('upload.check')}
          </button>{' '}
          <button
            type="submit"
            class={ready ? 'primary' : ''}
            disabled={!ready || sending}
            aria-describedby="run-help"
          >
            {t('upload.submit')}
          </button>
        </div>
      </form>
      <CheckReport
        state={checker.state}
        stale={!!key && 'key' in checker.state && checker.state.key !== key}
      />
      <UploadStatus state={uploader.state} onStop={uploader.stop} />
    </Screen>
  );
}
