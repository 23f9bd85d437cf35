import type { ComponentChildren } from 'preact';
import { ApiError } from './client.ts';
import { useI18n, type MessageKey } from './i18n.ts';
import type { JobState } from './types.ts';

export function StateBadge({ state }: { state: JobState }) {
  const { t } = useI18n();
  return <span class={`state state-${state.toLowerCase()}`}>{t(`state.${state}`)}</span>;
}

/** An error as the API gave it: its code, message and line (a rejected file names the line). */
export function ErrorBox({ title, error }: { title: string; error: Error }) {
  const { t } = useI18n();
  const api = error instanceof ApiError ? error : undefined;
  return (
    <div class="alert" role="alert" data-testid="error">
      <p class="alert-title">{title}</p>
      {api?.code ? (
        <p>
          {t('upload.code')}: <code data-testid="error-code">{api.code}</code>
          {api.line !== undefined ? (
            <>
              {' · '}
              <span data-testid="error-line">{t('upload.line', { line: api.line })}</span>
            </>
          ) : null}
        </p>
      ) : null}
      <p data-testid="error-message">{error.message}</p>
    </div>
  );
}

export function Screen({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="screen" aria-labelledby="screen-title">
      <h1 id="screen-title" tabIndex={-1}>
        {title}
      </h1>
      {children}
    </section>
  );
}

/** A definition list of label/value pairs. */
export function Facts({ items }: { items: readonly (readonly [string, ComponentChildren])[] }) {
  return (
    <dl class="facts">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

/**
 * A table in its scrolling wrapper: the caption, a row of column headings, the body's rows and an optional foot.
 * Responsive tables show each cell's heading from its `data-label` on narrow screens (styles.css).
 */
export function Table(p: {
  class: string;
  testId: string;
  /** The wrapper's classes (a card around the usage table). */
  wrapClass?: string;
  caption?: ComponentChildren;
  /** The columns' headings, by message key. */
  headings: readonly MessageKey[];
  children: ComponentChildren;
  foot?: ComponentChildren;
}) {
  const { t } = useI18n();
  return (
    <div class={p.wrapClass ?? 'table-wrap'}>
      <table class={p.class} data-testid={p.testId}>
        {p.caption !== undefined ? <caption>{p.caption}</caption> : null}
        <thead>
          <tr>
            {p.headings.map((h) => (
              <th key={h} scope="col">
                {t(h)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{p.children}</tbody>
        {p.foot !== undefined ? <tfoot>{p.foot}</tfoot> : null}
      </table>
    </div>
  );
}

/**
 * A form field: its label, the control, and the help under it. The control names the help in its
 * `aria-describedby` (`${id}-help` unless `helpId` says otherwise).
 */
export function Field(p: {
  id: string;
  label: string;
  help?: ComponentChildren;
  helpId?: string;
  children: ComponentChildren;
}) {
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      {p.children}
      {p.help !== undefined ? (
        <p id={p.helpId ?? `${p.id}-help`} class="help">
          {p.help}
        </p>
      ) : null}
    </div>
  );
}

/** A number input in its field (`inputMode` numeric for whole steps, decimal otherwise). */
export function NumberField(p: {
  id: string;
  label: string;
  min: number;
  max?: number;
  step: number;
  value: string;
  onValue: (v: string) => void;
}) {
  return (
    <Field id={p.id} label={p.label}>
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
    </Field>
  );
}

/** A numeric cell of a responsive table, labelled with its column's heading on narrow screens. */
export function NumCell({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <td data-label={label} class="num">
      {children}
    </td>
  );
}

/** A cell of a responsive table holding a code (an error code, a record's status), shown as code. */
export function CodeCell({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <td data-label={label}>
      <code>{children}</code>
    </td>
  );
}

/** A file input that hands on the file picked (the first; none when the choice is cleared). */
export function FileInput(p: {
  id: string;
  accept: string;
  describedBy: string;
  onFile: (file: File | undefined) => void;
}) {
  return (
    <input
      id={p.id}
      type="file"
      accept={p.accept}
      aria-describedby={p.describedBy}
      onChange={(e) => p.onFile(e.currentTarget.files?.[0])}
    />
  );
}
