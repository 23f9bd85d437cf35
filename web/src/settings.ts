import type { ConsoleSettings } from './types.ts';

declare const __ROWFLEET_CONSOLE__: ConsoleSettings;

export const settings: ConsoleSettings = __ROWFLEET_CONSOLE__;

/** Where the API is: the `rowfleet-api-base` meta tag of index.html, relative to the page (default `../`). */
export function apiBase(): URL {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="rowfleet-api-base"]');
  return new URL(meta?.content || '../', document.baseURI);
}
