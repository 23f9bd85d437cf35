import { useEffect, useMemo, useRef } from 'preact/hooks';
import { useI18n } from './i18n.ts';
import { previewHtml } from './preview-html.ts';

/** The browser's Trusted Types API (not in TypeScript's DOM types yet): only what is used here. */
interface TrustedTypesLike {
  createPolicy(name: string, rules: { createHTML(s: string): string }): { createHTML(s: string): unknown };
}

let policy: { createHTML(s: string): unknown } | undefined;

/**
 * The console's CSP requires Trusted Types for HTML sinks: the mail's HTML goes through a policy whose only uses are
 * an inert document and the srcdoc of a frame with `sandbox=""`.
 */
function trustedHtml(html: string): unknown {
  const tt = (globalThis as { trustedTypes?: TrustedTypesLike }).trustedTypes;
  if (!tt) return html;
  policy ??= tt.createPolicy('rowfleet-sandboxed-preview', { createHTML: (s) => s });
  return policy.createHTML(html);
}

/**
 * A mail's HTML in an iframe with `sandbox=""`: no script runs, the document has an origin of its own (it cannot
 * reach the console, its token or its API), forms and navigation are off.
 */
export function PreviewFrame({ html, title, testId }: { html: string; title: string; testId?: string }) {
  const { t } = useI18n();
  const ref = useRef<HTMLIFrameElement>(null);
  const shown = useMemo(() => previewHtml(html), [html]);
  useEffect(() => {
    // Set as a property through the policy, never as markup: Preact would assign a plain string.
    if (ref.current) (ref.current as unknown as { srcdoc: unknown }).srcdoc = trustedHtml(shown.html);
  }, [shown.html]);
  return (
    <>
      <iframe ref={ref} class="preview-frame" sandbox="" title={title} data-testid={testId} />
      {shown.removed ? (
        <p class="help" data-testid="preview-note">
          {t('check.previewPlain')}
        </p>
      ) : null}
    </>
  );
}
