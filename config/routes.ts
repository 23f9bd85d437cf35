/**
 * The REST API's routes, once: lib/rest-api.ts builds API Gateway's resources and methods from them, the local
 * runtime its local API, and test/infra checks that each function's router answers exactly its routes.
 */
export interface ApiRouteSpec {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  /** The function that serves it: `upload` the writes, `status` the reads, `console` the web console's files. */
  readonly function: 'upload' | 'status' | 'console';
  /** Behind the token authorizer (the site comes from the caller's token). */
  readonly auth: boolean;
  /** The job request travels as query parameters (POST /jobs) or as a JSON body with a model (POST /uploads). */
  readonly jobRequest?: 'query' | 'body';
  /** The route's query parameters: a schema of core/intake/query.ts (QUERY_SCHEMAS), by name. */
  readonly query?: 'errorsPage' | 'jobsPage' | 'usage';
}

export const API_ROUTES: readonly ApiRouteSpec[] = [
  { method: 'GET', path: '/health', function: 'status', auth: false },
  { method: 'GET', path: '/jobs', function: 'status', auth: true, query: 'jobsPage' },
  { method: 'POST', path: '/jobs', function: 'upload', auth: true, jobRequest: 'query' },
  { method: 'GET', path: '/jobs/{token}', function: 'status', auth: true },
  { method: 'DELETE', path: '/jobs/{token}', function: 'upload', auth: true },
  { method: 'POST', path: '/jobs/{token}/retry', function: 'upload', auth: true },
  // The user's corrected results.csv (or errors.csv) as the body, bytes as POST /jobs takes them.
  { method: 'POST', path: '/jobs/{token}/resubmit', function: 'upload', auth: true },
  { method: 'GET', path: '/jobs/{token}/results', function: 'status', auth: true },
  { method: 'GET', path: '/jobs/{token}/errors', function: 'status', auth: true, query: 'errorsPage' },
  // Where the job's time went, from its spans (local runtime only; on AWS 404 TIMELINE_NOT_LOCAL names its trace).
  { method: 'GET', path: '/jobs/{token}/timeline', function: 'status', auth: true },
  { method: 'POST', path: '/uploads', function: 'upload', auth: true, jobRequest: 'body' },
  { method: 'GET', path: '/usage', function: 'status', auth: true, query: 'usage' },
  // The web console (static files, no tenant data: every API call it makes carries the site's token).
  { method: 'GET', path: '/console', function: 'console', auth: false },
  { method: 'GET', path: '/console/{proxy+}', function: 'console', auth: false },
];

/**
 * Bodies API Gateway hands to the functions base64-encoded and unchanged (CSV bytes in any encoding, CP932
 * included); any other body (JSON) arrives as text, so that POST /uploads can be validated against its model.
 * POST /jobs takes only these types: any other body would reach it decoded as UTF-8, so it answers 415
 * (core/intake/upload-body.ts).
 */
export const BINARY_MEDIA_TYPES = [
  'text/csv',
  'application/octet-stream',
  'application/vnd.ms-excel',
] as const;

/** Whether API Gateway passes a body of this Content-Type base64-encoded. */
export function isBinaryMediaType(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return (BINARY_MEDIA_TYPES as readonly string[]).includes(type);
}
