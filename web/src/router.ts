import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { readonly name: 'upload' }
  | { readonly name: 'jobs' }
  | { readonly name: 'job'; readonly token: string }
  | { readonly name: 'loadtest' }
  | { readonly name: 'usage' };

/** Routes live in the hash (`#/jobs/<token>`), so any static host serves the console without rewrites. */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (first === 'upload') return { name: 'upload' };
  if (first === 'loadtest') return { name: 'loadtest' };
  if (first === 'usage') return { name: 'usage' };
  if (first === 'jobs' && second) return { name: 'job', token: second };
  return { name: 'jobs' };
}

export function href(route: Route): string {
  return route.name === 'job' ? `#/jobs/${encodeURIComponent(route.token)}` : `#/${route.name}`;
}

export function navigate(route: Route): void {
  location.hash = href(route);
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parseRoute(hash);
}
