import { useEffect, useState } from 'preact/hooks';
import { MESSAGES, useI18n, type MessageKey } from './i18n.ts';
import { useSession } from './session.ts';
import { settings } from './settings.ts';
import type { JobOptions } from './types.ts';

const num = (v: string): number | undefined => (v.trim() === '' ? undefined : Number(v));

type Field = 'processor' | 'template' | 'office' | 'workers' | 'maxFailureRate' | 'delay' | 'errorRate';
export type OptionValues = Readonly<Record<Field, string>>;

/** The job options as typed; `options` is what is sent (empty fields left out). */
export function useOptionValues() {
  const [values, setValues] = useState<OptionValues>({
    processor: settings.defaultProcessor,
    template: '',
    office: '',
    workers: '',
    maxFailureRate: '',
    delay: '',
    errorRate: '',
  });
  const options: JobOptions = {
    processor: values.processor,
    template: values.template.trim() || undefined,
    office: values.office.trim() || undefined,
    workers: num(values.workers),
    maxFailureRate: num(values.maxFailureRate),
    simulateDelayMs: num(values.delay),
    simulateErrorRate: num(values.errorRate),
  };
  return { values, options, set: (f: Field, v: string) => setValues((o) => ({ ...o, [f]: v })) };
}

interface FieldsProps {
  readonly values: OptionValues;
  readonly set: (f: Field, v: string) => void;
}

/** Processor, template, office, and "More options": the fields of a job request. */
export function OptionFields({ values, set }: FieldsProps) {
  const { t } = useI18n();
  const { api } = useSession();
  const [offices, setOffices] = useState<string[]>([]);

  // Offices the site's jobs ran for: suggestions for the office field.
  useEffect(() => {
    const ctrl = new AbortController();
    api.listJobs(ctrl.signal).then(
      (jobs) => setOffices([...new Set(jobs.map((j) => j.office).filter((o): o is string => !!o))].sort()),
      () => undefined,
    );
    return () => ctrl.abort();
  }, [api]);

  return (
    <>
      <div class="field">
        <label for="processor">{t('upload.processor')}</label>
        <select
          id="processor"
          value={values.processor}
          onChange={(e) => set('processor', e.currentTarget.value)}
        >
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
        <label for="template">{t('upload.template')}</label>
        <input
          id="template"
          autocomplete="off"
          aria-describedby="template-help"
          value={values.template}
          onInput={(e) => set('template', e.currentTarget.value)}
        />
        <p id="template-help" class="help">
          {t('upload.templateHelp')}
        </p>
      </div>
      <div class="field">
        <label for="office">{t('upload.office')}</label>
        <input
          id="office"
          list="offices"
          autocomplete="off"
          aria-describedby="office-help"
          value={values.office}
          onInput={(e) => set('office', e.currentTarget.value)}
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
        <NumberField id="workers" label="upload.workers" min={1} step={1} {...bind(values, set, 'workers')} />
        <NumberField
          id="max-failure-rate"
          label="upload.maxFailureRate"
          min={0}
          max={1}
          step={0.01}
          {...bind(values, set, 'maxFailureRate')}
        />
        <NumberField
          id="delay"
          label="upload.delay"
          min={0}
          max={60000}
          step={1}
          {...bind(values, set, 'delay')}
        />
        <NumberField
          id="error-rate"
          label="upload.errorRate"
          min={0}
          max={1}
          step={0.01}
          {...bind(values, set, 'errorRate')}
        />
      </details>
    </>
  );
}

const bind = (values: OptionValues, set: FieldsProps['set'], f: Field) => ({
  value: values[f],
  onValue: (v: string) => set(f, v),
});

function NumberField(p: {
  id: string;
  label: MessageKey;
  min: number;
  max?: number;
  step: number;
  value: string;
  onValue: (v: string) => void;
}) {
  const { t } = useI18n();
  return (
    <div class="field">
      <label for={p.id}>{t(p.label)}</label>
      <input
        id={p.id}
        type="number"
        min={p.min}
        max={p.max}
        step={p.step}
        inputMode={Number.isInteger(p.step) ? 'numeric' : 'decimal'}
        value={p.value}
        onInput={(e) => p.onValue(e.currentTarget.value)}
      />
    </div>
  );
}
