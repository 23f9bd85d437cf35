import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { translate, type Lang, type MessageKey, type Params } from './messages.ts';

export { LANGS, MESSAGES, translate, type Lang, type MessageKey, type Params } from './messages.ts';

const STORAGE_KEY = 'rowfleet.lang';

/** The remembered choice, else the browser's first language we have. */
export function initialLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === 'en' || saved === 'ja') return saved;
  for (const l of navigator.languages ?? [navigator.language]) {
    const base = l.toLowerCase().split('-')[0];
    if (base === 'ja' || base === 'en') return base;
  }
  return 'en';
}

export function rememberLang(lang: Lang): void {
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
}

export interface I18n {
  readonly lang: Lang;
  t(key: MessageKey, params?: Params): string;
  setLang(lang: Lang): void;
  number(n: number, fractionDigits?: number): string;
  dateTime(iso: string): string;
  time(ms: number): string;
  duration(seconds: number): string;
  bytes(n: number): string;
}

export function makeI18n(lang: Lang, setLang: (l: Lang) => void): I18n {
  const locale = lang === 'ja' ? 'ja-JP' : 'en-GB';
  const dt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' });
  const tm = new Intl.DateTimeFormat(locale, { timeStyle: 'medium' });
  return {
    lang,
    setLang,
    t: (key, params) => translate(lang, key, params),
    number: (n, fractionDigits = 0) =>
      new Intl.NumberFormat(locale, { maximumFractionDigits: fractionDigits }).format(n),
    dateTime: (iso) => dt.format(new Date(iso)),
    time: (ms) => tm.format(new Date(ms)),
    duration: (seconds) => {
      const s = Math.round(seconds);
      const h = Math.floor(s / 3600);
      const m = Math.floor((s % 3600) / 60);
      const r = s % 60;
      if (lang === 'ja') return h ? `${h}時間${m}分` : m ? `${m}分${r}秒` : `${r}秒`;
      return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
    },
    bytes: (n) => {
      const units = ['B', 'KB', 'MB', 'GB'];
      let v = n;
      let u = 0;
      while (v >= 1000 && u < units.length - 1) {
        v /= 1000;
        u++;
      }
      return `${new Intl.NumberFormat(locale, { maximumFractionDigits: u ? 1 : 0 }).format(v)} ${units[u]}`;
    },
  };
}

export const I18nContext = createContext<I18n>(makeI18n('en', () => undefined));

export const useI18n = (): I18n => useContext(I18nContext);
