import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { getStage, loadConfig } from '../config/index.ts';
import { API_ROUTES } from '../config/routes.ts';
import { localResourceNames } from '../config/names.ts';
import { ApiTokens } from '../core/intake/tokens.ts';
import { asAwsRole } from '../core/aws/aws-calls.ts';
import { errorMessage } from '../core/shared/errors.ts';
import { logger } from '../core/shared/log.ts';
import { reap, releaseDeadLeases } from '../core/reaper/reaper.ts';
import { splitJob } from '../core/split/split.ts';
import type { PipelineDeps } from '../core/deps.ts';
import { buildDeps, fromEnv } from '../core/deps.ts';
import {
  usageMailDepsFromEnv,
  type UsageMailDeps,
  type UsageMailInput,
  type UsageMailResult,
} from '../core/usage/mail.ts';
import { createUsageMailHandler } from '../lambdas/usage-mail/handler.ts';
import { localContext } from '../lambdas/shared/middleware.ts';
import { LocalApi } from './api-gateway.ts';
import { consoleAssets } from '../web/build.ts';
import { CONSOLE_PATH, serveConsole } from '../web/server.ts';
import { ControlServer } from './control.ts';
import { EventSources } from './event-sources.ts';
import { IsolatedFunction, inProcess, localLauncher, type FunctionName, type Invoke } from './functions.ts';
import type { LocalTaskLauncher } from './launcher.ts';
import { mailViewerUrl } from './emulator-gate.ts';
import { startEmulatorHost, type EmulatorHost } from './emulator-process.ts';
import { acquireStateDir, privateStateDir, processStart, removeOwner, writeOwner } from './ownership.ts';
import { ensureResources, setLocalAwsDefaults, type StageResources } from './resources.ts';
import { ENV } from '../config/env.ts';

export interface RuntimeOptions {
  /** Local state (objects, queues, DynamoDB, API tokens, worker logs). */
  readonly stateDir: string;
  /** An AWS-compatible endpoint (e.g. LocalStack) to use instead of the embedded emulators. */
  readonly endpoint?: string;
  readonly stage?: string;
  /** Run each function in its own process (as separate Lambda sandboxes) instead of in this one. */
  readonly isolateFunctions?: boolean;
  /**
   * With `isolateFunctions`: the bundled lambda host to run them from (cli/command-bundle.mjs `lambda-host`), as a
   * Lambda runs its bundle. @default local/entries.ts runtimeProcess (the command bundle's, else the source via tsx)
   */
  readonly functionHost?: string;
  /** Seconds between reaper passes; 0 turns the reaper off. @default the stage's `reaperIntervalSeconds` */
  readonly reaperSeconds?: number;
  /** Called when the number of commands attached to this runtime changes (local/daemon.ts). */
  readonly onClients?: (count: number) => void;
  /** Called if another process takes the state directory from this one (it must stop at once). */
  readonly onLost?: (err: Error) => void;
  /**
   * The state directory's lock, taken already by the caller (local/daemon.ts, which starts the emulators before
   * this module has loaded): its release. @default taken here
   */
  readonly heldStateDir?: () => Promise<void>;
  /** The embedded emulators, started already by the caller under that lock. @default started here */
  readonly emulators?: Promise<EmulatorHost>;
  /**
   * Spans of every process of the runtime (functions, workers) to the state directory's span store, or none (the
   * bench's `--tracing off` measures tracing's cost that way). @default `off` if ROWFLEET_TRACING=off, else `file`
   */
  readonly tracing?: 'file' | 'off';
}

/** The AWS endpoints every process of the runtime addresses (the SDK clients follow AWS_ENDPOINT_URL_*). */
function endpointEnv(endpoints: Record<string, string>, external?: string): Record<string, string> {
  if (external) return { AWS_ENDPOINT_URL: external };
  return {
    AWS_ENDPOINT_URL_S3: endpoints.s3sqs!,
    AWS_ENDPOINT_URL_SQS: endpoints.s3sqs!,
    AWS_ENDPOINT_URL_SNS: endpoints.s3sqs!,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb!,
    AWS_ENDPOINT_URL_SESV2: endpoints.ses!,
  };
}

/** The emulators (or the external endpoint) and the stage's resources on them. */
async function prepareAws(
  o: RuntimeOptions,
  stage: string,
  stateDir: string,
): Promise<{ host?: ChildProcess; endpoints: Record<string, string>; env: Record<string, string> }> {
  const names = localResourceNames(stage);
  let host: ChildProcess | undefined;
  let endpoints: Record<string, string> = { all: o.endpoint ?? '' };
  let credentials: Record<string, string> = {};
  if (!o.endpoint) {
    const started = await (o.emulators ?? startEmulatorHost(stateDir, stage));
    // Every process of the runtime (and every attached command: the owner file's env) signs with these; the
    // emulators answer nothing else (local/emulator-gate.ts).
    const c = started.credentials;
    credentials = { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
    Object.assign(process.env, credentials);
    host = started.child;
    endpoints = started.endpoints;
  }
  Object.assign(process.env, endpointEnv(endpoints, o.endpoint));
  let resources: StageResources;
  try {
    resources = await ensureResources(names, getStage(stage).timings, Boolean(o.endpoint));
  } catch (err) {
    host?.kill();
    throw new Error(
      `could not prepare local resources at ${JSON.stringify(endpoints)}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  const env = {
    ...endpointEnv(endpoints, o.endpoint),
    ...credentials,
    [ENV.stage]: stage,
    [ENV.bucket]: names.bucket,
    [ENV.table]: names.table,
    [ENV.finalizeQueueUrl]: resources.finalizeQueueUrl,
    [ENV.jobsTopicArn]: resources.jobsTopicArn,
    [ENV.dlqArn]: resources.dlqArn,
    [ENV.uploadEventsUrl]: resources.uploadEventsUrl,
    // Workers that leave and finalizes that end a job ask the upload function for a granter pass there.
    [ENV.grantRequestsQueueUrl]: resources.uploadEventsUrl,
    // `--max-workers N` of the command that started the runtime: its worker budget (core/deps.ts).
    ...(process.env[ENV.maxWorkers] ? { [ENV.maxWorkers]: process.env[ENV.maxWorkers] } : {}),
    // Local workers share this machine's cores: a job that names no number gets at most one per core (core/deps.ts).
    [ENV.defaultWorkersPerJob]: process.env[ENV.defaultWorkersPerJob] || String(availableParallelism()),
    // Every process of the runtime (functions, workers) writes its spans to the state directory's span store
    // (core/shared/trace-file.ts), which GET /jobs/{token}/timeline reads, unless `tracing: 'off'` (or
    // ROWFLEET_TRACING=off in the environment that starts it) switches it off.
    [ENV.tracing]: o.tracing ?? (process.env[ENV.tracing] === 'off' ? 'off' : 'file'),
    [ENV.traceDir]: join(stateDir, 'traces'),
  };
  return { host, endpoints, env };
}

/**
 * The embedded local runtime: emulators (or an external endpoint), the stage's resources, the real
 * handlers behind a local API Gateway, the S3-event and finalize-queue wiring, and workers as processes.
 * It owns its state directory (local/ownership.ts) and names itself in it, so the commands of that state
 * directory attach to it (local/attach.ts); when it starts on a state directory a killed runtime left behind, it
 * resumes that runtime's work first (see {@link resume}).
 */
export class LocalRuntime {
  private stopped = false;
  private readonly sources = new EventSources();
  private readonly background = new Set<Promise<unknown>>();

  private constructor(
    readonly stage: string,
    readonly stateDir: string,
    /** This runtime's id (finalize leases and worker pid files name it). */
    readonly instance: string,
    readonly api: LocalApi,
    readonly deps: PipelineDeps,
    readonly launcher: LocalTaskLauncher,
    private readonly tokens: ApiTokens,
    private readonly emulatorHost: ChildProcess | undefined,
    readonly endpoints: Record<string, string>,
    private readonly isolated: IsolatedFunction[],
    /** The usage mail's dependencies (the CLI's `mail send/preview` use them directly). */
    readonly mailDeps: UsageMailDeps,
    /** The usage-mail function (lambdas/usage-mail/handler.ts), invoked with the input its schedule sends. */
    readonly usageMail: (input: UsageMailInput) => Promise<UsageMailResult>,
    readonly control: ControlServer,
    private readonly releaseStateDir: () => Promise<void>,
  ) {}

  /** The embedded SES emulator's mail viewer (its root page); undefined on an external endpoint. */
  get mailViewerUrl(): string | undefined {
    return mailViewerUrl(this.endpoints);
  }

  /** Peak RSS per isolated function, in bytes (empty unless `isolateFunctions`). */
  functionMemory(): Record<string, number> {
    return Object.fromEntries(this.isolated.map((f) => [f.name, f.maxRss]));
  }

  get apiUrl(): string {
    return this.api.url;
  }

  /** The web console, served by the local API. */
  get consoleUrl(): string {
    return this.api.url + CONSOLE_PATH;
  }

  static async start(o: RuntimeOptions): Promise<LocalRuntime> {
    const stage = o.stage ?? 'local';
    const stageConfig = getStage(stage);
    const stateDir = resolve(o.stateDir);
    privateStateDir(stateDir);
    setLocalAwsDefaults(stage);
    const instance = randomUUID();
    const release =
      o.heldStateDir ??
      (await acquireStateDir(stateDir, {
        waitMs: 30_000,
        onLost: o.onLost ?? ((err) => process.stderr.write(`local runtime: ${errorMessage(err)}\n`)),
      }));
    let host: ChildProcess | undefined;
    try {
      const aws = await prepareAws(o, stage, stateDir);
      host = aws.host;
      const runtimeEnv = { ...aws.env, [ENV.runtimeInstance]: instance };
      // The functions run in this process, the SDK clients and the usage mail's deps still read the environment.
      Object.assign(process.env, runtimeEnv);
      const launcher = localLauncher(stateDir, instance);
      const deps = buildDeps(fromEnv(runtimeEnv), launcher);
      const isolated = o.isolateFunctions
        ? (['upload', 'status', 'finalize'] as const).map(
            (n) =>
              new IsolatedFunction(
                n,
                stateDir,
                undefined,
                o.functionHost ? { file: o.functionHost, execArgv: [] } : undefined,
              ),
          )
        : [];
      await Promise.all(isolated.map((f) => f.ready));
      const fn = (name: FunctionName): Invoke =>
        isolated.find((f) => f.name === name)?.invoke ?? inProcess(name, launcher);
      const tokens = new ApiTokens(deps.env.table);
      const api = await serveApi(stage, fn, tokens, new URL(aws.endpoints.s3sqs ?? o.endpoint!).origin);
      const mailDeps = usageMailDepsFromEnv();
      const usageMail = createUsageMailHandler(mailDeps);
      const rt = new LocalRuntime(
        stage,
        stateDir,
        instance,
        api,
        deps,
        launcher,
        tokens,
        host,
        aws.endpoints,
        isolated,
        mailDeps,
        (input) => asAwsRole('usageMail', () => usageMail(input, localContext('usage-mail'))),
        new ControlServer(launcher, o.onClients),
        release,
      );
      // Each site's API token (the commands read them from the state directory) while the work of a killed
      // runtime is resumed: they touch different items.
      await Promise.all([rt.resume(), rt.siteTokens(loadConfig().sites.map((s) => s.id))]);
      rt.wireEvents(fn, aws.env, o.reaperSeconds ?? stageConfig.timings.reaperIntervalSeconds);
      await rt.announce(aws, o.endpoint);
      return rt;
    } catch (err) {
      host?.kill();
      // Started by the caller but not taken over (the start failed before): it goes too.
      if (!host)
        void o.emulators?.then(
          (h) => h.child.kill(),
          () => undefined,
        );
      await release().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Picks up what a runtime of this state directory that was killed left: its workers (their emulators are gone)
   * are stopped; its finalize leases are released (it is known dead: only one runtime owns a state directory);
   * the splits it had under way are run again; and one reaper pass relaunches the workers of running jobs and asks
   * for the finalizes at once, so a job resumes within seconds.
   */
  private async resume(): Promise<void> {
    const { deps } = this;
    const stopped = await this.launcher.stopOthers();
    const released = await releaseDeadLeases(
      deps,
      (holder) => holder.startsWith('local:') && !holder.startsWith(`local:${this.instance}:`),
    );
    let resplit = 0;
    for (const job of await deps.jobs.listActive()) {
      if (job.state !== 'RECEIVED' || (!job.splitStartedAt && job.upload !== 'direct')) continue;
      if ((await deps.objects.size(job.sourceKey)) === undefined) continue;
      resplit++;
      const workers = job.options?.workers ? Number(job.options.workers) : undefined;
      this.track(
        splitJob(deps, job.site, job.token, { workers, takeOver: true }).catch((err: unknown) =>
          process.stderr.write(`local runtime: split of ${job.token} failed: ${errorMessage(err)}\n`),
        ),
      );
    }
    const report = await reap(deps, { graceSeconds: 0 });
    if (
      stopped + released.length + resplit + report.relaunched.length + report.finalizeRequested.length >
      0
    ) {
      logger.warn('local runtime: resumed the work of a runtime that was stopped or killed', {
        workersStopped: stopped,
        leasesReleased: released.length,
        splitsResumed: resplit,
        relaunched: report.relaunched.length,
        finalizeRequested: report.finalizeRequested.length,
      });
    }
  }

  /** Opens the control endpoint and names this runtime in its state directory: commands attach from now on. */
  private async announce(
    aws: { host?: ChildProcess; endpoints: Record<string, string>; env: Record<string, string> },
    endpoint: string | undefined,
  ): Promise<void> {
    await this.control.listen();
    writeOwner({
      pid: process.pid,
      processStart: processStart(process.pid),
      instance: this.instance,
      stage: this.stage,
      stateDir: this.stateDir,
      ...(endpoint ? { endpoint } : {}),
      apiUrl: this.api.url,
      controlUrl: this.control.url,
      secret: this.control.secret,
      endpoints: aws.endpoints,
      ...(aws.host?.pid ? { emulatorPid: aws.host.pid } : {}),
      env: aws.env,
      startedAt: new Date().toISOString(),
    });
  }

  /** The event sources: S3 upload events and finalize requests to their functions, the reaper's schedule. */
  private wireEvents(fn: (name: FunctionName) => Invoke, env: Record<string, string>, reaperSeconds: number) {
    const finalize = fn('finalize') as (e: SQSEvent) => Promise<SQSBatchResponse>;
    const upload = fn('upload') as (e: SQSEvent) => Promise<unknown>;
    this.sources.poll(env[ENV.finalizeQueueUrl]!, async (e) =>
      (await finalize(e)).batchItemFailures.map((f) => f.itemIdentifier),
    );
    this.sources.poll(env[ENV.uploadEventsUrl]!, async (e) => {
      await upload(e);
      return [];
    });
    if (reaperSeconds > 0)
      this.sources.every(reaperSeconds, 'reaper', () => asAwsRole('reaper', () => reap(this.deps)));
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  /** Issues a new API token bound to `site`. */
  issueToken(site: string): Promise<string> {
    return this.tokens.issue(site, 'cli');
  }

  /** A bearer token for the site, issued once and kept in the state directory. */
  async tokenFor(site: string): Promise<string> {
    return (await this.siteTokens([site]))[site]!;
  }

  /**
   * The sites' bearer tokens, each issued once and kept in the state directory: those kept are checked, the
   * missing (or no longer valid) issued, all at once; the file is written once.
   */
  async siteTokens(sites: readonly string[]): Promise<Record<string, string>> {
    const file = join(this.stateDir, 'api-tokens.json');
    const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
    const tokens = await Promise.all(
      sites.map(async (site): Promise<[string, string, boolean]> => {
        const known = saved[site];
        if (known && (await this.tokens.authenticate(`Bearer ${known}`)) === site)
          return [site, known, false];
        return [site, await this.tokens.issue(site, 'local'), true];
      }),
    );
    if (tokens.some(([, , issued]) => issued)) {
      const all = { ...saved, ...Object.fromEntries(tokens.map(([site, token]) => [site, token])) };
      writeFileSync(file, JSON.stringify(all, null, 2), { mode: 0o600 });
    }
    return Object.fromEntries(tokens.map(([site, token]) => [site, token]));
  }

  /**
   * Stops cleanly, in order: no new attachments, the workers (they finish the chunks in hand), the event sources
   * (deliveries under way finish: a split or a finalize is never cut in half), the API, the functions, the
   * emulators (their state saved); then the state directory is given up.
   */
  /**
   * Stops cleanly: workers (SIGTERM, then SIGKILL after 10 s), event sources, the API, the functions, the control
   * server, the emulators (their state saved). `onStep` hears each step as it begins, so a stop that hangs says
   * where (the daemon bounds it: {@link LocalRuntime.kill}).
   */
  async stop(onStep: (step: string) => void = () => undefined): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.control.refuseAttach();
    onStep('workers');
    await this.launcher.stopAll();
    onStep('background work');
    await Promise.all(this.background);
    onStep('event sources');
    await this.sources.stop();
    onStep('API');
    await this.api.close();
    onStep('functions');
    await Promise.all(this.isolated.map((f) => f.stop()));
    onStep('traces');
    await this.deps.tracing?.flush();
    onStep('control');
    await this.control.close();
    onStep('emulators');
    const host = this.emulatorHost;
    if (host && host.exitCode === null && host.signalCode === null && host.connected) {
      await new Promise<void>((r) => {
        host.once('exit', () => r());
        host.send({ type: 'stop' });
      });
    }
    removeOwner(this.stateDir, this.instance);
    await this.releaseStateDir().catch(() => undefined);
  }

  /**
   * Ends the runtime's processes at once, as a kill -9 of the whole runtime would (its jobs resume at the next
   * start: every step of the pipeline is safe to repeat): for a clean stop that did not end in time.
   */
  kill(): void {
    this.launcher.killAll();
    this.emulatorHost?.kill('SIGKILL');
    for (const f of this.isolated) f.kill();
    removeOwner(this.stateDir, this.instance);
  }
}

/**
 * The local API Gateway in front of the upload and status functions, with the authorizer's token check; the
 * console's routes (config/routes.ts) are served by web/server.ts serveConsole from the console built for the stage
 * (web/build.ts consoleAssets: rebuilt when a source changed), with the same headers the console function sends
 * on AWS, the embedded S3 (where presigned uploads go) allowed in its Content-Security-Policy.
 */
async function serveApi(
  stage: string,
  fn: (name: FunctionName) => Invoke,
  tokens: ApiTokens,
  uploadOrigin: string,
): Promise<LocalApi> {
  const handlers = {
    upload: fn('upload') as (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult | undefined>,
    status: fn('status') as (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>,
  };
  const consoleDir = await consoleAssets({ stage });
  const api = new LocalApi(
    API_ROUTES.flatMap((r) =>
      r.function === 'console'
        ? []
        : [{ method: r.method, resource: r.path, handler: handlers[r.function], auth: r.auth }],
    ),
    (h) => asAwsRole('authorizer', () => tokens.authenticate(h)),
    stage,
    (req, res) => serveConsole(req, res, { dir: consoleDir, uploadOrigins: [uploadOrigin] }),
  );
  await api.listen();
  return api;
}
