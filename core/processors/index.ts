import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { BadRequestError, errorMessage } from '../shared/errors.ts';
import { jsonProcessor } from './json.ts';
import { mailProcessor } from './mail.ts';
import { reportProcessor } from './report.ts';
import { PROCESSOR_NAME, type RowProcessor } from './types.ts';
import { echoed } from '../shared/own.ts';
import { BUILT_IN_NAMES, processorNames } from './names.ts';
import {
  buildErrorFile,
  builtDir,
  builtFile,
  bundledManifests,
  checkedProcessor,
  checkJobApart,
  FROM_SOURCES,
  importGuarded,
  inspectProcessor,
  ProcessorBrokenError,
  sourceName,
  usersDir,
  type Inspected,
} from './users.ts';
import { ENV } from '../../config/env.ts';

export type { RowProcessor, RowInput, RowContext, RowOutput, RateLimit } from './types.ts';
export { RecordError, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_MS, PROCESSOR_NAME } from './types.ts';
export { PROCESSOR_BROKEN, ProcessorBrokenError } from './users.ts';

export { DEFAULT_PROCESSOR, processorNames } from './names.ts';

const BUILT_IN = new Map<string, RowProcessor>(
  [jsonProcessor, reportProcessor, mailProcessor].map((p) => [p.name, p]),
);
if ([...BUILT_IN.keys()].join() !== BUILT_IN_NAMES.join())
  throw new Error(
    `names.ts lists the built-in processors ${BUILT_IN_NAMES.join()}, not ${[...BUILT_IN.keys()].join()}`,
  );

/** A user's module as a processor: its default export (or `processor`), checked, named after its file. */
export function processorOf(mod: Record<string, unknown>, file: string, name: string): RowProcessor {
  return checkedProcessor(mod, file, name, [...BUILT_IN.keys()]);
}

/**
 * What the API and the split know of a processor: what it declares, and its job check, never its `process`. A
 * user's comes from its manifest (users.ts): the asking process never runs the user's module.
 */
export type ProcessorInfo = Omit<RowProcessor, 'process' | 'checkJob'> & {
  checkJob?(job: {
    readonly site: string;
    readonly options: Readonly<Record<string, string>>;
  }): void | Promise<void>;
};

function unknownProcessor(name: string): BadRequestError {
  const listed = FROM_SOURCES
    ? processorNames().join(', ')
    : `${[...BUILT_IN.keys()].join(', ')}, processors/`;
  return new BadRequestError(
    'UNKNOWN_PROCESSOR',
    `Unknown processor "${echoed(name)}". Available: ${listed}.`,
  );
}

/** A user's processor as the API sees it: its manifest (cached by the file's content), or why it is broken. */
async function usersInfo(name: string, stage: string): Promise<Inspected | undefined> {
  if (FROM_SOURCES) return inspectProcessor(name, stage, [...BUILT_IN.keys()]);
  const bundled = bundledManifests();
  return bundled && Object.hasOwn(bundled, name) ? bundled[name] : undefined;
}

function infoOf(found: Inspected, name: string, stage: string): ProcessorInfo {
  if (!found.ok) throw new ProcessorBrokenError(found.file, found.error);
  const { checkJob, ...declared } = found.manifest;
  return {
    ...declared,
    // Run apart from this process; a bundle (the API's function on AWS) has no sources to run it from.
    ...(checkJob && FROM_SOURCES
      ? { checkJob: (job) => checkJobApart(name, stage, [...BUILT_IN.keys()], job) }
      : {}),
  };
}

/**
 * What the processor called `name` declares: a built-in one, or a user's from its manifest. An unknown name is a
 * 400 UNKNOWN_PROCESSOR, a broken file a 503 PROCESSOR_BROKEN naming the file and its error.
 */
export async function processorInfo(
  name: string,
  stage = process.env[ENV.stage] || 'local',
): Promise<ProcessorInfo> {
  const builtIn = BUILT_IN.get(name);
  if (builtIn) return builtIn;
  const found = await usersInfo(name, stage);
  if (!found) throw unknownProcessor(name);
  return infoOf(found, name, stage);
}

const loading = new Map<string, Promise<RowProcessor | undefined>>();

/** A user's module imported in this process (a worker's own processor only); undefined when there is none. */
async function importUsers(name: string): Promise<RowProcessor | undefined> {
  const file = sourceName(name);
  let url: string;
  if (FROM_SOURCES) {
    const path = `${usersDir()}/${name}.ts`;
    if (!existsSync(path)) return undefined;
    url = pathToFileURL(path).href;
  } else {
    const dir = builtDir();
    if (existsSync(buildErrorFile(dir, name)))
      throw new ProcessorBrokenError(file, readFileSync(buildErrorFile(dir, name), 'utf8').trim());
    if (!existsSync(builtFile(dir, name))) return undefined;
    url = pathToFileURL(builtFile(dir, name)).href;
  }
  try {
    return processorOf(await importGuarded(url), file, name);
  } catch (err) {
    throw new ProcessorBrokenError(file, errorMessage(err).split('\n').slice(0, 6).join(' ').trim());
  }
}

/**
 * The processor called `name`, to run its records (workers only: a user's module is imported in this process). An
 * unknown name is a 400 UNKNOWN_PROCESSOR, a module that does not load a 503 PROCESSOR_BROKEN.
 */
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
  throw unknownProcessor(name);
}

/** A processor as `rowfleet processors` lists it: what it declares, or, for a broken file, its error. */
export interface ListedProcessor {
  readonly name: string;
  /** `built-in`, or the user's file (`processors/<name>.ts`). */
  readonly source: string;
  /** What it declares; absent for a broken file. */
  readonly processor?: ProcessorInfo;
  /** What is wrong with a broken file (it does not load, or is no processor). */
  readonly error?: string;
}

/** Every processor this process can list: built-in ones, then users' (each inspected apart; broken ones flagged). */
export async function listProcessors(stage = process.env[ENV.stage] || 'local'): Promise<ListedProcessor[]> {
  return Promise.all(
    processorNames().map(async (name): Promise<ListedProcessor> => {
      const builtIn = BUILT_IN.get(name);
      if (builtIn) return { name, processor: builtIn, source: 'built-in' };
      const found = await usersInfo(name, stage);
      if (!found) return { name, source: sourceName(name), error: 'not found' };
      if (!found.ok) return { name, source: found.file, error: found.error };
      return { name, processor: infoOf(found, name, stage), source: found.file };
    }),
  );
}
