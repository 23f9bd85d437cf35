import { useEffect, useRef } from 'preact/hooks';

/** The browser's Trusted Types API (not in TypeScript's DOM types yet): only what is used here. */
interface TrustedTypesLike {
  createPolicy(name: string, rules: { createHTML(s: string): string }): { createHTML(s: string): unknown };
}

let policy: { createHTML(s: string): unknown } | undefined;

/**
 * The mail's HTML as the srcdoc of an iframe with `sandbox=""`: no script runs, the document has an origin of its
 * own (it cannot reach the console, its token or its API), forms and navigation are off. The console's CSP requires
 * Trusted Types for such sinks, so the HTML goes through a policy whose only use is this sandboxed frame.
 */
function trustedHtml(html: string): unknown {
  const tt = (globalThis as { trustedTypes?: TrustedTypesLike }).trustedTypes;
  if (!tt) return html;
  policy ??= tt.createPolicy('rowfleet-sandboxed-preview', { createHTML: (s) => s });
  return policy.createHTML(html);
}

export function PreviewFrame({ html, title, testId }: { html: string; title: string; testId?: string }) {
  const ref = useRef<HTMLIFrameElement>(null);
  useEffect(() => {
    // Set as a property through the policy, never as markup: Preact would assign a plain string.
    if (ref.current) (ref.current as unknown as { srcdoc: unknown }).srcdoc = trustedHtml(html);
  }, [html]);
  return <iframe ref={ref} class="preview-frame" sandbox="" title={title} data-testid={testId} />;
}
