import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BadRequestError } from '../../shared/errors.ts';
import { jsonProcessor } from './json.ts';
import { mailProcessor } from './mail.ts';
import { reportProcessor } from './report.ts';
import { PROCESSOR_NAME, type RowProcessor } from './types.ts';
import { echoed } from '../../shared/own.ts';

export type { RowProcessor, RowInput, RowContext, RowOutput, RateLimit } from './types.ts';
export { RecordError, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_MS, PROCESSOR_NAME } from './types.ts';

export const DEFAULT_PROCESSOR = 'report';

const BUILT_IN = new Map<string, RowProcessor>(
  [jsonProcessor, reportProcessor, mailProcessor].map((p) => [p.name, p]),
);

/**
 * Users' processors: one file per processor, `processors/<name>.ts` at the repository root. From the sources
 * (tsx, vitest) the folder is read; in a bundle (the worker image, the local worker, the Lambda functions) the
 * template-literal import below is an esbuild glob import: esbuild puts every file of the folder into the
 * bundle behind it, so bundles know the processors without a generated list or a plugin.
 */
const USERS_DIR = fileURLToPath(new URL('../../../processors/', import.meta.url));
/** Running from the sources (the folder exists beside this file), not from a bundle. */
const FROM_SOURCES = import.meta.url.endsWith('.ts');

const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', 'must be a function');
const processorShape = z.object({
  name: z.string().regex(PROCESSOR_NAME, 'lower-case letters, digits and dashes'),
  description: z.string().min(1),
  concurrency: z.number().int().min(1).optional(),
  costMs: z.number().min(0).optional(),
  rateLimit: z
    .object({
      key: z.string().regex(PROCESSOR_NAME).optional(),
      perSecond: z.union([z.number().positive(), fn]),
    })
    .optional(),
  sideEffects: z.boolean().optional(),
  takesTemplate: z.boolean().optional(),
  timeoutMs: z.number().int().positive().optional(),
  checkJob: fn.optional(),
  process: fn,
});

/** A user's module as a processor: its default export (or `processor`), checked, named after its file. */
export function processorOf(mod: Record<string, unknown>, file: string, name: string): RowProcessor {
  const r = processorShape.safeParse(mod.default ?? mod.processor);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(export)'}: ${i.message}`);
    throw new Error(`${file}: not a row processor (${problems.join('; ')})`);
  }
  if (r.data.name !== name)
    throw new Error(`${file}: the processor is named "${r.data.name}", not "${name}"`);
  if (BUILT_IN.has(name)) throw new Error(`${file}: "${name}" is a built-in processor's name`);
  return (mod.default ?? mod.processor) as RowProcessor;
}

/** The names of `processors/*.ts` (from the sources only: a bundle has no folder to read). */
function usersNames(): string[] {
  if (!FROM_SOURCES || !existsSync(USERS_DIR)) return [];
  return readdirSync(USERS_DIR)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => PROCESSOR_NAME.test(n))
    .sort();
}

/** Built-in processors first, then users' (`processors/`), as far as this process can list them. */
export function processorNames(): string[] {
  return [...BUILT_IN.keys(), ...usersNames().filter((n) => !BUILT_IN.has(n))];
}

const loading = new Map<string, Promise<RowProcessor | undefined>>();

async function importUsers(name: string): Promise<RowProcessor | undefined> {
  if (FROM_SOURCES && !existsSync(`${USERS_DIR}${name}.ts`)) return undefined;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`../../../processors/${name}.ts`)) as Record<string, unknown>;
  } catch (err) {
    // esbuild's glob import answers this for a name with no file in the bundle.
    if (!FROM_SOURCES && /^Module not found in bundle/.test((err as Error).message)) return undefined;
    throw err;
  }
  return processorOf(mod, `processors/${name}.ts`, name);
}

/** The processor called `name`: a built-in one or a user's. An unknown name is a 400 UNKNOWN_PROCESSOR. */
export async function loadProcessor(name: string): Promise<RowProcessor> {
  const builtIn = BUILT_IN.get(name);
  if (builtIn) return builtIn;
  let p: Promise<RowProcessor | undefined> | undefined;
  if (PROCESSOR_NAME.test(name)) {
    p = loading.get(name);
    if (!p) loading.set(name, (p = importUsers(name)));
  }
  const found = await p;
  if (found) return found;
  const listed = FROM_SOURCES
    ? processorNames().join(', ')
    : `${[...BUILT_IN.keys()].join(', ')}, processors/`;
  throw new BadRequestError(
    'UNKNOWN_PROCESSOR',
    `Unknown processor "${echoed(name)}". Available: ${listed}.`,
  );
}

export interface ListedProcessor {
  readonly processor: RowProcessor;
  /** `built-in`, or the user's file (`processors/<name>.ts`). */
  readonly source: string;
}

/** Every processor this process can list, loaded (`rowfleet processors`). */
export async function listProcessors(): Promise<ListedProcessor[]> {
  return Promise.all(
    processorNames().map(async (name) => ({
      processor: await loadProcessor(name),
      source: BUILT_IN.has(name) ? 'built-in' : `processors/${name}.ts`,
    })),
  );
}
