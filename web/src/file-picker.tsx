import { useState } from 'preact/hooks';
import { FileInput } from './components.tsx';
import { useI18n } from './i18n.ts';

/** The drop zone and the file input: a file dropped or chosen. */
export function FilePicker({
  file,
  missing,
  onPick,
}: {
  file: File | undefined;
  missing: boolean;
  onPick: (f: File | undefined) => void;
}) {
  const i = useI18n();
  const { t } = i;
  const [dragging, setDragging] = useState(false);
  return (
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
        onPick(e.dataTransfer?.files[0]);
      }}
    >
      <p class="dropzone-title">{t('upload.drop')}</p>
      <label for="file" class="sr-only">
        {t('upload.choose')}
      </label>
      <FileInput
        id="file"
        accept=".csv,.tsv,.txt,text/csv,text/tab-separated-values,text/plain"
        describedBy="file-chosen"
        onFile={onPick}
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
  );
}
