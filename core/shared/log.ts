import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The process-wide logger. In a function, `injectLambdaContext` gives it the request id, the function's name and
 * the cold-start flag; every line of the invocation carries them.
 */
export const logger = new Logger({ serviceName: 'rowfleet' });

type Extra = Record<string, unknown>;

/** A logger that puts fixed keys (the site above all) in every line it writes. */
export interface Log {
  debug(message: string, extra?: Extra): void;
  info(message: string, extra?: Extra): void;
  warn(message: string, extra?: Extra): void;
  error(message: string, extra?: Extra): void;
}

/**
 * Lines through `base` that always carry `keys`. A thin wrapper rather than Powertools' createChild(): a child
 * logger recomputes the Lambda context itself, so every new child would claim a cold start; and wrappers are
 * safe for concurrent jobs in one process (each line gets its own keys, nothing is shared).
 */
export function withKeys(keys: Extra, base: Logger = logger): Log {
  return {
    debug: (message, extra) => base.debug(message, { ...keys, ...extra }),
    info: (message, extra) => base.info(message, { ...keys, ...extra }),
    warn: (message, extra) => base.warn(message, { ...keys, ...extra }),
    error: (message, extra) => base.error(message, { ...keys, ...extra }),
  };
}

/** The log of one job: every line names its site and token. */
export function jobLogger(site: string, token: string, base: Logger = logger): Log {
  return withKeys({ site, token }, base);
}
