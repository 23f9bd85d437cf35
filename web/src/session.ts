import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './client.ts';

export interface Session {
  readonly api: Api;
  /** The signed-in site, once an answer of the API named it. */
  readonly site?: string;
  noteSite(site: string): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in console');
  return s;
}

/** The API token lives in sessionStorage only: gone when the tab closes, never in localStorage or a cookie. */
const TOKEN_KEY = 'rowfleet.token';

export const savedToken = (): string | undefined => sessionStorage.getItem(TOKEN_KEY) ?? undefined;
export const saveToken = (token: string): void => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = (): void => sessionStorage.removeItem(TOKEN_KEY);
