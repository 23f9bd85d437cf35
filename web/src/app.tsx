import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api } from './client.ts';
import { I18nContext, initialLang, makeI18n, rememberLang, type Lang, type MessageKey } from './i18n.ts';
import { href, useRoute, type Route } from './router.ts';
import { SessionContext, forgetToken, saveToken, savedToken, type Session } from './session.ts';
import { apiBase } from './settings.ts';
import { Job } from './screens/job.tsx';
import { Jobs } from './screens/jobs.tsx';
import { LoadTest } from './screens/loadtest.tsx';
import { SignIn } from './screens/signin.tsx';
import { Upload } from './screens/upload.tsx';
import { Usage } from './screens/usage.tsx';

const NAV: readonly { route: Route; label: MessageKey }[] = [
  { route: { name: 'upload' }, label: 'nav.upload' },
  { route: { name: 'jobs' }, label: 'nav.jobs' },
  { route: { name: 'loadtest' }, label: 'nav.loadtest' },
  { route: { name: 'usage' }, label: 'nav.usage' },
];

function screenOf(route: Route) {
  switch (route.name) {
    case 'upload':
      return <Upload />;
    case 'jobs':
      return <Jobs />;
    case 'job':
      return <Job token={route.token} />;
    case 'loadtest':
      return <LoadTest />;
    case 'usage':
      return <Usage />;
  }
}

export function App() {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const i18n = useMemo(
    () =>
      makeI18n(lang, (l) => {
        rememberLang(l);
        setLangState(l);
      }),
    [lang],
  );
  const { t } = i18n;
  const [token, setToken] = useState<string | undefined>(savedToken);
  const [site, setSite] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const route = useRoute();
  const routeKey = route.name === 'job' ? `job:${route.token}` : route.name;

  const signOut = (ended: boolean) => {
    forgetToken();
    setToken(undefined);
    setSite(undefined);
    setNotice(ended ? 'app.sessionEnded' : undefined);
  };
  const session = useMemo<Session | undefined>(
    () =>
      token
        ? { api: new Api(apiBase(), token, () => signOut(true)), site, noteSite: (s) => setSite(s) }
        : undefined,
    [token, site],
  );

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  // A new screen: its title in the tab, and focus on its heading (screen readers announce it).
  const first = useRef(true);
  useEffect(() => {
    const h1 = document.querySelector<HTMLElement>('#screen-title');
    document.title = `${h1?.textContent ?? ''} – Rowfleet`;
    if (first.current) {
      first.current = false;
      return;
    }
    h1?.focus();
  }, [routeKey, !!token, lang]);

  const skip = (e: Event) => {
    e.preventDefault();
    document.querySelector<HTMLElement>('#main')?.focus();
  };
  const other: Lang = lang === 'en' ? 'ja' : 'en';
  const active = (r: Route) => r.name === route.name || (r.name === 'jobs' && route.name === 'job');

  return (
    <I18nContext.Provider value={i18n}>
      <a class="skip" href="#main" onClick={skip}>
        {t('app.skip')}
      </a>
      <header class="top">
        <p class="brand">{t('app.name')}</p>
        {session ? (
          <nav aria-label={t('nav.label')}>
            <ul>
              {NAV.map((n) => (
                <li key={n.label}>
                  <a href={href(n.route)} aria-current={active(n.route) ? 'page' : undefined}>
                    {t(n.label)}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        ) : null}
        <div class="tools">
          {session?.site ? (
            <span class="site" data-testid="site">
              {t('app.site', { site: session.site })}
            </span>
          ) : null}
          <button
            type="button"
            lang={other}
            title={t('app.language')}
            data-testid="lang"
            onClick={() => i18n.setLang(other)}
          >
            {other === 'ja' ? '日本語' : 'English'}
          </button>
          {session ? (
            <button type="button" onClick={() => signOut(false)}>
              {t('app.signOut')}
            </button>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {session ? (
          <SessionContext.Provider value={session}>{screenOf(route)}</SessionContext.Provider>
        ) : (
          <SignIn
            notice={notice ? t(notice as MessageKey) : undefined}
            onSignedIn={(tok) => {
              saveToken(tok);
              setNotice(undefined);
              setToken(tok);
            }}
          />
        )}
      </main>
    </I18nContext.Provider>
  );
}
