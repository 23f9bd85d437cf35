import { fork, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTION_PROCESS_ENV } from '../config/names.ts';
import { depsFromEnv } from '../core/deps.ts';
import { createFinalizeHandler } from '../lambdas/finalize/handler.ts';
import { createStatusHandler } from '../lambdas/status/handler.ts';
import { createUploadHandler } from '../lambdas/upload/handler.ts';
import type { Context } from 'aws-lambda';
import { localContext } from '../lambdas/shared/middleware.ts';
import { LocalTaskLauncher } from './launcher.ts';
import { asAwsRole } from '../core/aws/aws-calls.ts';
import { compileCacheEnv, runtimeProcess } from './entries.ts';
import { ENV } from '../config/env.ts';

/** The local runtime's functions: the real handler factories, each given deps built from the environment. */
export const FUNCTIONS = {
  upload: createUploadHandler,
  status: createStatusHandler,
  finalize: createFinalizeHandler,
} as const;

export type FunctionName = keyof typeof FUNCTIONS;
export type Invoke = (event: unknown) => Promise<unknown>;

export function localLauncher(stateDir: string, instance?: string): LocalTaskLauncher {
  return new LocalTaskLauncher(stateDir, instance);
}

/**
 * A handler invoked in this process, each invocation with a Lambda context of its own (a new request id), its AWS
 * calls made as the function's role (core/aws/clients.ts awsRole; an isolated function's process has it as
 * ROWFLEET_FUNCTION).
 */
export function inProcess(name: FunctionName, launcher: LocalTaskLauncher): Invoke {
  const handler = FUNCTIONS[name](depsFromEnv(launcher)) as (e: unknown, c: Context) => Promise<unknown>;
  return (event) => asAwsRole(name, () => handler(event, localContext(`rowfleet-local-${name}`)));
}

const BUNDLE_HOST = fileURLToPath(new URL('./bundle-host.mjs', import.meta.url));

/**
 * A function run from its deployed bytes instead of the sources: the bundle's entry file (a copy of its cdk.out
 * asset), loaded by a plain-JavaScript host (local/bundle-host.mjs) on the given Node binary, with exactly the given
 * environment (nothing inherited from this process) and the bundle's folder as working directory.
 */
export interface FunctionBundle {
  /** The bundle's entry, e.g. `<dir>/index.mjs` (the template's Handler `index.handler`). */
  readonly entry: string;
  /** The Node binary Lambda's runtime stands for (config/node.ts DEPLOYED_NODE_MAJOR). */
  readonly node: string;
  /** The whole environment of the function (the template's variables, region, credentials, endpoints). */
  readonly env: Record<string, string>;
  /** The function's timeout (its context's remaining time). @default 900 */
  readonly timeoutSeconds?: number;
}

/**
 * A handler in its own long-lived child process, as a warm Lambda sandbox: memory is measured per
 * function (peak RSS) and one function's state cannot leak into another's.
 */
export class IsolatedFunction {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  /** Peak resident memory of the function's process, in bytes. */
  maxRss = 0;
  /** Settles once the process has loaded its handler (its first message), as a warm sandbox waits for requests. */
  readonly ready: Promise<void>;

  constructor(
    readonly name: string,
    stateDir: string,
    /** Run this bundle (the deployed bytes) instead of the sources of `name`. */
    private readonly bundle?: FunctionBundle,
    /**
     * The process that loads the sources' handler: the lambda host of the command bundle (its packages in it, as a
     * Lambda runs its bundle). @default the command bundle's when this process runs from it, else the source through tsx
     */
    host: { readonly file: string; readonly execArgv: readonly string[] } = runtimeProcess('lambda-host'),
  ) {
    this.child = bundle
      ? fork(BUNDLE_HOST, [bundle.entry], {
          execPath: bundle.node,
          execArgv: [],
          env: bundle.env,
          cwd: dirname(bundle.entry),
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(host.file, [], {
          execArgv: [...host.execArgv],
          env: {
            ...process.env,
            ...compileCacheEnv(),
            ...FUNCTION_PROCESS_ENV[name],
            [ENV.functionName]: name,
            [ENV.stateDir]: stateDir,
          },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', () => resolve());
      this.child.once('exit', (code) =>
        reject(new Error(`function ${name} exited while loading (code ${code})`)),
      );
    });
    this.ready.catch(() => undefined);
    this.child.on('message', (m: { id?: number; result?: unknown; error?: string; maxRss: number }) => {
      if (m.id === undefined) return;
      this.maxRss = Math.max(this.maxRss, m.maxRss);
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(`${name}: ${m.error}`));
      else p?.resolve(m.result);
    });
    this.child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`function ${name} exited (code ${code})`));
      this.pending.clear();
    });
  }

  readonly invoke: Invoke = (event) =>
    new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, { resolve, reject });
      if (!this.bundle) {
        this.child.send({ id, event });
        return;
      }
      // A bundle's host gets the context as data (its functions are added there).
      const timeout = this.bundle.timeoutSeconds ?? 900;
      const {
        getRemainingTimeInMillis: _r,
        done: _d,
        fail: _f,
        succeed: _s,
        ...context
      } = localContext(this.name, timeout);
      this.child.send({ id, event, context: { ...context, deadline: Date.now() + timeout * 1000 } });
    });

  /** Ends the function's process at once (a stop that did not end in time). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((r) => {
      this.child.once('exit', () => r());
      this.child.disconnect();
    });
  }
}
