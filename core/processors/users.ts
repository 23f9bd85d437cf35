import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadRequestError, errorMessage } from '../shared/errors.ts';
import { z } from 'zod';
import { PROCESSOR_NAME, type RowProcessor } from './types.ts';
import type { Inspected, ProcessorManifest } from '../../config/processors.ts';
import { ENV } from '../../config/env.ts';

export type { Inspected, ProcessorManifest } from '../../config/processors.ts';

/**
 * Users' processors (`processors/<name>.ts`), kept apart from each other and from the process that reads them.
 * Each file is built and loaded on its own, so a broken one (a syntax error, a throw or `process.exit` at import, a
 * default export that is no processor) breaks only the jobs that name it:
 * - what the API, the split and `rowfleet processors` need to know of a processor (its manifest: what it declares)
 *   comes from a separate, killable process that imports the file (`inspect.ts`), cached by the file's content;
 *   the process asking never runs a user's top-level code;
 * - a worker imports only its job's processor: from the sources, or, in a bundle (the local workers, the worker
 *   image), its own file built beside the bundle (`fargate-worker/build-processors.ts`).
 */

/** A processor that cannot be loaded: a request naming it is refused; a worker of its job fails the job. */
export const PROCESSOR_BROKEN = 'PROCESSOR_BROKEN';

/**
 * A request naming a broken processor: 503 (the deployment cannot run it until its file is fixed; nothing was
 * created), the file and its error in the message.
 */
export class ProcessorBrokenError extends BadRequestError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(PROCESSOR_BROKEN, `${file} is broken: ${problem}`, 503);
  }
}

/** Running from the sources (tsx, vitest), not from a bundle. */
export const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** The folder of users' processors: `ROWFLEET_PROCESSORS_DIR`, else `processors/` at the repository root. */
export function usersDir(): string {
  return process.env[ENV.processorsDir] || fileURLToPath(new URL('../../processors/', import.meta.url));
}

/**
 * Where a bundle finds its processors built one per file: `ROWFLEET_PROCESSORS_BUILT` (the local launcher sets
 * it), else `processors/` beside the bundle (the worker image).
 */
export function builtDir(): string {
  return process.env[ENV.processorsBuilt] || fileURLToPath(new URL('./processors/', import.meta.url));
}

/** A built processor (`<name>.mjs`) and, for a file that did not build, its error (`<name>.error.txt`). */
export const builtFile = (dir: string, name: string) => join(dir, `${name}.mjs`);
export const buildErrorFile = (dir: string, name: string) => join(dir, `${name}.error.txt`);

/** The file a user's processor is read from, as users name it. */
export const sourceName = (name: string) => `processors/${name}.ts`;

/** The processor names of the files in a folder ending in `ext` (names that are no processor name are skipped). */
export function namesIn(dir: string, ext: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`))
    .map((f) => f.slice(0, -ext.length))
    .filter((n) => PROCESSOR_NAME.test(n))
    .sort();
}

/** Users' processor names: the folder's files from the sources, the built ones (and the broken) in a bundle. */
export function usersNames(): string[] {
  if (FROM_SOURCES) return namesIn(usersDir(), '.ts');
  const dir = builtDir();
  return [...new Set([...namesIn(dir, '.mjs'), ...namesIn(dir, '.error.txt')])].sort();
}

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
  // Static only: the manifest carries it to an API that never runs a user's code.
  needs: z.object({ columns: z.array(z.string().min(1)) }).optional(),
  process: fn,
  // Run by the check only for built-in processors (the API never runs a user's code), checked all the same.
  preview: fn.optional(),
});

/**
 * A user's module as a processor: its default export (or `processor`), checked, named after its file, not one of
 * the `reserved` (built-in) names. Here rather than beside the built-ins so an inspection process loads none of them.
 */
export function checkedProcessor(
  mod: Record<string, unknown>,
  file: string,
  name: string,
  reserved: readonly string[],
): RowProcessor {
  const r = processorShape.safeParse(mod.default ?? mod.processor);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(export)'}: ${i.message}`);
    throw new Error(`${file}: not a row processor (${problems.join('; ')})`);
  }
  if (r.data.name !== name)
    throw new Error(`${file}: the processor is named "${r.data.name}", not "${name}"`);
  if (reserved.includes(name)) throw new Error(`${file}: "${name}" is a built-in processor's name`);
  return (mod.default ?? mod.processor) as RowProcessor;
}

/** A refusal by a processor's `checkJob`, as the inspection process reports it. */
export interface CheckRefusal {
  readonly code: string;
  readonly message: string;
  readonly status: number;
}

/** What the inspection process sends back (inspect.ts). */
export type InspectAnswer =
  | { readonly ok: true; readonly manifest: ProcessorManifest; readonly refusal?: CheckRefusal }
  | { readonly ok: false; readonly error: string; readonly timedOut?: boolean };

/** How long an inspection may take before its process is killed and the processor counts as broken. */
export const INSPECT_TIMEOUT_MS = Number(process.env[ENV.inspectTimeoutMs]) || 30_000;

const INSPECT = fileURLToPath(new URL('./inspect.ts', import.meta.url));

/**
 * Runs inspect.ts on one file in a child process (tsx), killed after {@link INSPECT_TIMEOUT_MS}: a file that does
 * not load, throws, exits or hangs is an error, never a crash of the caller. Sources only (tsx).
 */
export function runInspection(
  file: string,
  name: string,
  stage: string,
  reserved: readonly string[],
  job?: { readonly site: string; readonly options: Readonly<Record<string, string>> },
): Promise<InspectAnswer> {
  return new Promise((resolve) => {
    let stderr = '';
    let answer: InspectAnswer | undefined;
    const child = fork(
      INSPECT,
      [file, name, stage, reserved.join(','), ...(job ? [JSON.stringify(job)] : [])],
      {
        execArgv: ['--import', import.meta.resolve('tsx')],
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      },
    );
    const timer = setTimeout(() => {
      answer ??= {
        ok: false,
        error: `did not load within ${INSPECT_TIMEOUT_MS / 1000} s (killed)`,
        timedOut: true,
      };
      child.kill('SIGKILL');
    }, INSPECT_TIMEOUT_MS);
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-2000)));
    child.on('message', (m) => (answer ??= m as InspectAnswer));
    child.on('error', (err) => (answer ??= { ok: false, error: errorMessage(err) }));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = stderr.trim().split('\n').slice(-3).join(' ').trim();
      resolve(
        answer ?? {
          ok: false,
          error: `exited (${signal ?? `code ${code}`}) while loading${last ? `: ${last}` : ''}`,
        },
      );
    });
  });
}

/** Inspections by file content and stage: a file is inspected again only when it changed. */
const inspected = new Map<string, Promise<Inspected>>();

/** The user's processor `name` from its manifest (or its error); undefined when there is no such file. */
export async function inspectProcessor(
  name: string,
  stage: string,
  reserved: readonly string[],
): Promise<Inspected | undefined> {
  if (!PROCESSOR_NAME.test(name)) return undefined;
  const path = join(usersDir(), `${name}.ts`);
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) return undefined;
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  const file = sourceName(name);
  const key = `${path}\0${stage}\0${createHash('sha256').update(bytes).digest('hex')}`;
  let p = inspected.get(key);
  if (!p) {
    p = runInspection(path, name, stage, reserved).then((a) => {
      // A timeout may be a busy machine rather than the file: the next request inspects it again.
      if (!a.ok && a.timedOut) inspected.delete(key);
      return a.ok ? { ok: true, file, manifest: a.manifest } : { ok: false, file, error: a.error };
    });
    inspected.set(key, p);
  }
  return p;
}

/** Runs a user's `checkJob` on a job request in an inspection process; a refusal is thrown as a BadRequestError. */
export async function checkJobApart(
  name: string,
  stage: string,
  reserved: readonly string[],
  job: { readonly site: string; readonly options: Readonly<Record<string, string>> },
): Promise<void> {
  const a = await runInspection(join(usersDir(), `${name}.ts`), name, stage, reserved, job);
  if (!a.ok) throw new ProcessorBrokenError(sourceName(name), a.error);
  if (a.refusal) throw new BadRequestError(a.refusal.code, a.refusal.message, a.refusal.status);
}

/**
 * Imports a user's module in this process (a worker: it runs the processor anyway), with `process.exit` made to
 * throw while the module's top-level code runs, so a module that exits fails its job instead of killing the worker.
 */
export async function importGuarded(url: string): Promise<Record<string, unknown>> {
  const exit = process.exit.bind(process);
  process.exit = ((code?: number | string | null) => {
    throw new Error(`calls process.exit(${code ?? ''}) while loading`);
  }) as typeof process.exit;
  try {
    return (await import(url)) as Record<string, unknown>;
  } finally {
    process.exit = exit;
  }
}

/** The users' processors' manifests a bundle was built with (an esbuild `define`, lib/rowfleet-function.ts). */
declare const __ROWFLEET_PROCESSORS__: Record<string, Inspected> | undefined;

/** The manifests this bundle was built with, if it was (the API's functions on AWS); undefined elsewhere. */
export function bundledManifests(): Record<string, Inspected> | undefined {
  return typeof __ROWFLEET_PROCESSORS__ === 'undefined' ? undefined : __ROWFLEET_PROCESSORS__;
}
