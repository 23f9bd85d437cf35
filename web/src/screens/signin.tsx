import { useState } from 'preact/hooks';
import { Api, ApiError } from '../client.ts';
import { ErrorBox, Field, Screen } from '../components.tsx';
import { useI18n } from '../i18n.ts';
import { apiBase } from '../settings.ts';

/** Sign-in with the site's API token: checked with GET /jobs before it is kept (sessionStorage). */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (token: string) => void; notice?: string }) {
  const { t } = useI18n();
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();

  const submit = async (e: Event) => {
    e.preventDefault();
    const value = token.trim();
    if (!value) {
      setError(new Error(t('signin.empty')));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await new Api(apiBase(), value).listJobs();
      onSignedIn(value);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? new ApiError(401, undefined, t('signin.rejected'))
          : (err as Error),
      );
      setBusy(false);
    }
  };

  return (
    <Screen title={t('signin.title')}>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <p>{t('signin.intro')}</p>
      <form class="card form" onSubmit={submit} noValidate>
        <Field id="token" label={t('signin.token')} help={t('signin.tokenHelp')}>
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            aria-describedby="token-help"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t('signin.checking') : t('signin.submit')}
        </button>
        {error ? <ErrorBox title={t('common.error')} error={error} /> : null}
      </form>
    </Screen>
  );
}
