import { Logger } from '@aws-lambda-powertools/logger';

/** The process-wide logger; per-job code logs through {@link jobLogger} so every line names site and token. */
export const logger = new Logger({ serviceName: 'rowfleet' });

export type Log = Logger;

export function jobLogger(site: string, token: string, base: Logger = logger): Logger {
  return base.createChild({ persistentKeys: { site, token } });
}
