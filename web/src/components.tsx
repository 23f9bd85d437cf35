import type { ComponentChildren } from 'preact';
import { ApiError } from './api.ts';
import { useI18n } from './i18n.ts';
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
