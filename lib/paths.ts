import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root: lambda entries, the worker's Dockerfile and the lock file are found from here. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export function projectPath(relative: string): string {
  return join(PROJECT_ROOT, relative);
}
