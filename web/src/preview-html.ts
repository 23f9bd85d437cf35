/** A mail's HTML made quiet under the console's CSP (pure text; unit-tested in Node). */

/** Elements the policy refuses whole (with their content), and those without content that load something. */
const REFUSED_ELEMENTS = /<(script|style|object|embed|iframe|noscript|template)\b[\s\S]*?<\/\1\s*>/gi;
const REFUSED_VOID = /<(?:link|base|script|style)\b[^>]*>/gi;
/** One start tag, and in it the attributes the policy would refuse: inline styles, and what loads an image. */
const START_TAG = /<[a-zA-Z][^>]*>/g;
const STYLE_ATTRIBUTE = /\s+style\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)/gi;
const IMAGE_ATTRIBUTE = /\s+(?:src|srcset|background)\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)/gi;

/**
 * The HTML without what the console's CSP refuses in the frame (a srcdoc document inherits the page's policy, and
 * any document the page parses reports to it): scripts, style sheets and style attributes, images (their alt text
 * stays). Refused, they would only show up as violations; `removed` says the preview lacks some of the mail's looks.
 * Text, not a parse: safety comes from the sandbox and the CSP, this only keeps the preview quiet.
 */
export function previewHtml(html: string): { html: string; removed: boolean } {
  const out = html
    .replace(REFUSED_ELEMENTS, '')
    .replace(REFUSED_VOID, '')
    .replace(START_TAG, (tag) => tag.replace(STYLE_ATTRIBUTE, '').replace(IMAGE_ATTRIBUTE, ''));
  return { html: out, removed: out !== html };
}
