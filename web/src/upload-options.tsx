import { useEffect, useState } from 'preact/hooks';
import { Field, NumberField } from './components.tsx';
import { MESSAGES, useI18n, type MessageKey } from './i18n.ts';
import { useSession } from './session.ts';
import { settings } from './settings.ts';
import type { JobOptions } from './types.ts';

const num = (v: string): number | undefined => (v.trim() === '' ? undefined : Number(v));

type OptionField = 'processor' | 'template' | 'office' | 'workers' | 'maxFailureRate' | 'delay' | 'errorRate';
export type OptionValues = Readonly<Record<OptionField, string>>;

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
  return { values, options, set: (f: OptionField, v: string) => setValues((o) => ({ ...o, [f]: v })) };
}

interface FieldsProps {
  readonly values: OptionValues;
  readonly set: (f: OptionField, v: string) => void;
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
      <Field id="processor" label={t('upload.processor')}>
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
      </Field>
      <Field id="template" label={t('upload.template')} help={t('upload.templateHelp')}>
        <input
          id="template"
          autocomplete="off"
          aria-describedby="template-help"
          value={values.template}
          onInput={(e) => set('template', e.currentTarget.value)}
        />
      </Field>
      <Field id="office" label={t('upload.office')} help={t('upload.officeHelp')}>
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
      </Field>
      <details class="advanced">
        <summary>{t('upload.advanced')}</summary>
        {ADVANCED.map((f) => (
          <NumberField
            key={f.id}
            id={f.id}
            label={t(f.label)}
            min={f.min}
            max={f.max}
            step={f.step}
            value={values[f.field]}
            onValue={(v) => set(f.field, v)}
          />
        ))}
      </details>
    </>
  );
}

/** "More options": the number fields, in the order shown. */
const ADVANCED: readonly {
  id: string;
  label: MessageKey;
  field: OptionField;
  min: number;
  max?: number;
  step: number;
}[] = [
  { id: 'workers', label: 'upload.workers', field: 'workers', min: 1, step: 1 },
  {
    id: 'max-failure-rate',
    label: 'upload.maxFailureRate',
    field: 'maxFailureRate',
    min: 0,
    max: 1,
    step: 0.01,
  },
  { id: 'delay', label: 'upload.delay', field: 'delay', min: 0, max: 60000, step: 1 },
  { id: 'error-rate', label: 'upload.errorRate', field: 'errorRate', min: 0, max: 1, step: 0.01 },
];
