import { usersNames } from './users.ts';

/**
 * The built-in processors' names, for what needs the names without the processors (the CLI's `--processor`
 * choices: loading the built-ins brings the mail processor's SES client and with it every AWS SDK client, a third
 * of a command's start). index.ts holds its built-ins to this list when it loads.
 */
export const BUILT_IN_NAMES: readonly string[] = ['json', 'report', 'mail'];

export const DEFAULT_PROCESSOR = 'report';

/** Built-in processors first, then users' (`processors/`, broken ones included), as far as this process can list them. */
export function processorNames(): string[] {
  return [...BUILT_IN_NAMES, ...usersNames().filter((n) => !BUILT_IN_NAMES.includes(n))];
}
