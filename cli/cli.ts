import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { getSite, getStage, loadConfig } from '../config/index.ts';
import { processorNames } from '../core/processors/names.ts';
import { limiterName, ratePerSecond } from '../core/processors/settings.ts';
import type { AttachOptions, AttachedApi, AttachedRuntime } from '../local/attach.ts';
import {
  ApiError,
  checkFile,
  DEFAULT_STALL_SECONDS,
  downloadResults,
  resubmitJob,
  retryJob,
  runJob,
  type FollowOptions,
  type ResubmitStart,
  type RunSummary,
} from './run-job.ts';
import { formatCheck } from './check-summary.ts';
// A command loads what it runs when it runs (below, `await import`): every command used to load every other's
// modules (the AWS SDK clients among them) before doing anything.

/** 0 for SUCCEEDED or PARTIAL, 2 for REJECTED, 1 otherwise. */
function exitCode(state: string): number {
  if (state === 'SUCCEEDED' || state === 'PARTIAL') return 0;
  return state === 'REJECTED' ? 2 : 1;
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
};

const program = new Command()
  .name('rowfleet')
  .description(
    'Rowfleet: CSV in, one result per row from parallel workers, a zip out.\nRuns on embedded local emulators by default; --endpoint points at LocalStack or another AWS-compatible endpoint.',
  )
  .showHelpAfterError()
  // Parse errors are thrown (not an exit), so a command asked for JSON still ends with its JSON line.
  .exitOverride();

/**
 * Runs `fn` attached to the state directory's local runtime (started when none runs), then detaches. `reattach`
 * attaches again — starting the runtime again if it died meanwhile — and answers its API's URL (a command that
 * follows a job through a runtime restart).
 */
async function withRuntime<T>(
  o: AttachOptions,
  fn: (rt: AttachedApi, reattach: () => Promise<string>) => Promise<T>,
): Promise<T> {
  const { attachApi } = await import('../local/attach.ts');
  return withAttached(o, attachApi, fn);
}

/** {@link withRuntime}, with the runtime's resources addressed from this process too (the AWS SDK clients). */
async function withPipeline<T>(o: AttachOptions, fn: (rt: AttachedRuntime) => Promise<T>): Promise<T> {
  const { attachRuntime } = await import('../local/attach.ts');
  return withAttached(o, attachRuntime, fn);
}

async function withAttached<R extends AttachedApi, T>(
  o: AttachOptions,
  attachRuntime: (o: AttachOptions) => Promise<R>,
  fn: (rt: R, reattach: () => Promise<string>) => Promise<T>,
): Promise<T> {
  let rt = await attachRuntime(o);
  const reattach = async () => {
    const before = rt;
    rt = await attachRuntime(o);
    await before.detach();
    return rt.apiUrl;
  };
  try {
    return await fn(rt, reattach);
  } finally {
    await rt.detach();
  }
}

/** The local runtime's worker budget: the most workers at once across all its jobs. */
const maxWorkersOption = () =>
  new Option(
    '--max-workers <n>',
    "the local runtime's worker budget: most workers at once, all jobs and sites (default: the local stage's)",
  ).argParser(positiveInt);

const stallOption = () =>
  new Option(
    '--stall-timeout <s>',
    'give up (exit 1, naming the likely cause) when the job makes no progress for this long',
  )
    .argParser(positiveInt)
    .default(DEFAULT_STALL_SECONDS);

const stateDirOption = () =>
  new Option('--state-dir <dir>', 'local state kept between commands').default('.rowfleet');
const endpointOption = () =>
  new Option(
    '--endpoint <url>',
    'use an AWS-compatible endpoint (e.g. LocalStack) instead of the embedded emulators',
  );

/** The options of a job run from the CLI (`run`, `loadtest`), as commander parses them. */
interface JobFlags {
  processor: string;
  workers?: number;
  concurrency?: number;
  template?: string;
  simulateDelayMs?: number;
  simulateErrorRate?: number;
  maxFailureRate?: number;
  out: string;
  stallTimeout: number;
  maxWorkers?: number;
  stateDir: string;
  endpoint?: string;
  json?: boolean;
}

/** Adds the options every job-running command takes (JobFlags but the processor, whose default differs). */
function jobOptions(c: Command): Command {
  return c
    .option('--workers <n>', 'number of row workers (default: by size, up to the stage limit)', positiveInt)
    .option(
      '--concurrency <n>',
      "records each worker keeps in flight (default: the processor's)",
      positiveInt,
    )
    .option('--template <name>', "the mail processor's template, one of the site's (default: its first)")
    .option('--simulate-delay-ms <ms>', 'a delay per record, to watch a long job (0..60000)', Number)
    .option(
      '--simulate-error-rate <r>',
      'share of records (0..1) whose first attempt fails transiently; the retry succeeds',
      Number,
    )
    .option(
      '--max-failure-rate <r>',
      'stop the job early (FAILED, FAILURE_RATE_EXCEEDED) once more than this share (0..1) of the records processed has failed',
      Number,
    )
    .option('--out <dir>', 'where to write <token>.zip', 'out')
    .addOption(stallOption())
    .addOption(maxWorkersOption())
    .addOption(stateDirOption())
    .addOption(endpointOption())
    .option('--json', 'print one JSON summary as the last line of stdout');
}

const runCommand = program
  .command('run')
  .description('upload a CSV as a site, run the job to its end and download the result zip')
  .argument('<file>', 'CSV file (UTF-8, UTF-8 with BOM, CP932/Shift_JIS, or UTF-16 with BOM)')
  .requiredOption('--site <id>', 'the site (tenant) the job belongs to')
  .addOption(new Option('--processor <name>', 'row processor').choices(processorNames()).default('report'))
  .option('--office <id>', "one of the site's offices (default: its first)");
jobOptions(runCommand).action(async (file: string, o: JobFlags & { site: string; office?: string }) => {
  getSite(o.site);
  if (!existsSync(file)) throw new InvalidArgumentError(`no such file: ${file}`);
  const summary = await withRuntime(o, async (rt, reattach) =>
    runJob({
      apiUrl: rt.apiUrl,
      apiToken: await rt.tokenFor(o.site),
      file,
      processor: o.processor,
      office: o.office,
      workers: o.workers,
      simulateDelayMs: o.simulateDelayMs,
      simulateErrorRate: o.simulateErrorRate,
      request: { concurrency: o.concurrency, template: o.template, maxFailureRate: o.maxFailureRate },
      outDir: o.out,
      directMaxBytes: getStage(rt.stage).limits.directUploadMaxBytes,
      progress: true,
      stallSeconds: o.stallTimeout,
      reconnect: reattach,
    }),
  );
  {
    const { seconds, ...out } = summary;
    if (o.json) {
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      const r = summary.rows;
      process.stdout.write(
        `${summary.state}: ${r.total} records — ${r.succeeded} succeeded, ${r.failed} failed, ${r.rejected} rejected (${seconds.toFixed(1)} s)\n` +
          (summary.error ? `${summary.error.code}: ${summary.error.message}\n` : '') +
          (summary.zip ? `zip: ${summary.zip}\n` : ''),
      );
    }
  }
  process.exitCode = exitCode(summary.state);
});

const loadtestCommand = program
  .command('loadtest')
  .description('generate a job of n records, run it on the local runtime, print throughput and the outcome')
  .requiredOption('--records <n>', 'how many records (1000, 5000, 10000 … 1000000)', positiveInt)
  .option('--site <id>', 'the site to run as', 'sakai')
  .addOption(new Option('--processor <name>', 'row processor').choices(processorNames()).default('json'));
jobOptions(loadtestCommand).action(async (o: JobFlags & { records: number; site: string }) => {
  getSite(o.site);
  const { loadtest } = await import('./loadtest.ts');
  await withRuntime(o, async (rt) => {
    const request = {
      concurrency: o.concurrency,
      template: o.template,
      maxFailureRate: o.maxFailureRate,
    };
    const r = await loadtest(rt, {
      ...o,
      request,
      outDir: o.out,
      progress: true,
      stallSeconds: o.stallTimeout,
    });
    if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      process.stdout.write(
        `${r.state}: ${r.records} records (${(r.fileBytes / 1048576).toFixed(1)} MiB) in ${r.seconds.toFixed(1)} s — ` +
          `${r.recordsPerSecond} records/s; ${r.rows.succeeded} succeeded, ${r.rows.failed} failed, ${r.rows.rejected} rejected` +
          (r.zip ? `\nzip: ${r.zip}\n` : '\n'),
      );
    }
    process.exitCode = exitCode(r.state);
  });
});

program
  .command('check')
  .description(
    'through the API (POST /jobs?check=true): read a CSV as the run would — encoding, records, rejected ones, the columns the processor needs — render its first three records and estimate the run; nothing is created. Exit 0 when the run would be accepted, 1 when not',
  )
  .argument('<file>', 'CSV file (UTF-8, UTF-8 with BOM, CP932/Shift_JIS, or UTF-16 with BOM)')
  .requiredOption('--site <id>', 'the site (tenant) the job would belong to')
  .addOption(new Option('--processor <name>', 'row processor').choices(processorNames()).default('report'))
  .option('--office <id>', "one of the site's offices (default: its first)")
  .option('--template <name>', "the mail processor's template, one of the site's (default: its first)")
  .option('--workers <n>', 'number of row workers (default: by size, up to the stage limit)', positiveInt)
  .option('--concurrency <n>', "records each worker keeps in flight (default: the processor's)", positiveInt)
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--json', 'print the check (the API answer) as one JSON line on stdout')
  .action(
    async (
      file: string,
      o: {
        site: string;
        processor: string;
        office?: string;
        template?: string;
        workers?: number;
        concurrency?: number;
        stateDir: string;
        endpoint?: string;
        json?: boolean;
      },
    ) => {
      getSite(o.site);
      if (!existsSync(file)) throw new InvalidArgumentError(`no such file: ${file}`);
      const answer = await withRuntime(o, async (rt) =>
        checkFile({
          apiUrl: rt.apiUrl,
          apiToken: await rt.tokenFor(o.site),
          file,
          processor: o.processor,
          office: o.office,
          workers: o.workers,
          request: { template: o.template, concurrency: o.concurrency },
        }).catch((err: unknown) => {
          if (!(err instanceof ApiError)) throw err;
          return err;
        }),
      );
      if (answer instanceof ApiError) {
        // The API refused the request (an unknown template, a body too large…): its code and message.
        const error = { code: answer.code, message: answer.message };
        if (o.json) process.stdout.write(JSON.stringify({ check: true, ok: false, error }) + '\n');
        else process.stderr.write(`rowfleet: check of ${file}: ${error.code}: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(o.json ? JSON.stringify(answer) + '\n' : formatCheck(answer));
      process.exitCode = answer.ok ? 0 : 1;
    },
  );

/**
 * Runs `fn` with the API of the state directory's runtime as the site's caller (a command about one job). An API
 * refusal (another site's or an unknown job, nothing there yet) prints its code and message and exits 1.
 */
async function withJobApi(
  verb: string,
  jobToken: string,
  o: AttachOptions & { site: string },
  fn: (api: { apiUrl: string; apiToken: string }) => Promise<void>,
): Promise<void> {
  getSite(o.site);
  await withRuntime(o, async (rt) => {
    try {
      await fn({ apiUrl: rt.apiUrl, apiToken: await rt.tokenFor(o.site) });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      process.stderr.write(`rowfleet: ${verb} of ${jobToken}: ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
    }
  });
}

/** The options of a command that starts a job's next attempt and follows it (`retry`, `resubmit`). */
interface AttemptCommandOptions {
  site: string;
  out: string;
  stallTimeout: number;
  stateDir: string;
  endpoint?: string;
  json?: boolean;
}

/**
 * Starts a job's next attempt through the API (`start`, given how to follow a job), follows it to its end and
 * prints its summary: one JSON line with `--json` (plus `extra()`), else a sentence. An API refusal (nothing to run,
 * another site's or an unknown job, an attempt running…) prints its code and message and exits 1.
 */
async function runAttempt(
  verb: 'retry' | 'resubmit',
  jobToken: string,
  o: AttemptCommandOptions,
  start: (follow: FollowOptions) => Promise<RunSummary & { attempt: number }>,
  extra: () => Record<string, unknown> = () => ({}),
): Promise<void> {
  getSite(o.site);
  await withRuntime(o, async (rt, reattach) => {
    let summary;
    try {
      summary = await start({
        apiUrl: rt.apiUrl,
        apiToken: await rt.tokenFor(o.site),
        outDir: o.out,
        progress: true,
        stallSeconds: o.stallTimeout,
        reconnect: reattach,
      });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const error = { code: err.code, message: err.message };
      if (o.json) process.stdout.write(JSON.stringify({ state: 'FAILED', token: jobToken, error }) + '\n');
      else process.stderr.write(`rowfleet: ${verb} of ${jobToken}: ${error.code}: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    const { seconds, ...out } = summary;
    if (o.json) process.stdout.write(JSON.stringify({ ...out, ...extra() }) + '\n');
    else {
      const r = summary.rows;
      const rejected = verb === 'resubmit' ? `, ${r.rejected} rejected` : '';
      process.stdout.write(
        `${verb} of ${jobToken} (attempt ${summary.attempt}): ${summary.state}, ${r.total} records — ${r.succeeded} succeeded, ${r.failed} failed${rejected} (${seconds.toFixed(1)} s)\n` +
          (summary.zip ? `zip: ${summary.zip}\n` : ''),
      );
    }
    process.exitCode = exitCode(summary.state);
  });
}

program
  .command('retry')
  .description(
    'through the API (POST /jobs/{token}/retry): run the failed and never processed records of a finished job again, as its next attempt (same token, numbers and lines)',
  )
  .argument('<token>', 'the finished job')
  .requiredOption('--site <id>', 'the site the job belongs to')
  .option('--out <dir>', 'where to write <token>.zip', 'out')
  .addOption(stallOption())
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--json', 'print one JSON summary as the last line of stdout')
  .action((jobToken: string, o: AttemptCommandOptions) =>
    runAttempt('retry', jobToken, o, (follow) => retryJob(follow, jobToken)),
  );

program
  .command('resubmit')
  .description(
    "through the API (POST /jobs/{token}/resubmit): send a finished job's results.csv (or errors.csv) back with corrected values; its records that did not succeed run in the job's next attempt, those that succeeded or are IN_DOUBT never run again",
  )
  .argument('<token>', 'the finished job')
  .argument('<file>', 'the corrected results.csv or errors.csv (CP932 or UTF-8, as Excel saves it)')
  .requiredOption('--site <id>', 'the site the job belongs to')
  .option('--out <dir>', 'where to write <token>.zip', 'out')
  .addOption(stallOption())
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--json', 'print one JSON summary as the last line of stdout')
  .action(async (jobToken: string, file: string, o: AttemptCommandOptions) => {
    getSite(o.site);
    if (!existsSync(file)) throw new InvalidArgumentError(`no file ${file}`);
    let answer: ResubmitStart | undefined;
    await runAttempt(
      'resubmit',
      jobToken,
      o,
      (follow) =>
        resubmitJob(follow, jobToken, file, (a) => {
          answer = a;
          if (o.json) return;
          // What runs and what does not, before the attempt is followed.
          process.stderr.write(
            `attempt ${a.attempt} of ${jobToken}: ${a.run} records run again, ${a.notRunCount} not run\n` +
              a.notRun.map((r) => `  record ${r.record} (${r.status}): ${r.reason}\n`).join('') +
              (a.notRunCount > a.notRun.length ? `  … and ${a.notRunCount - a.notRun.length} more\n` : ''),
          );
        }),
      () => ({ run: answer?.run, notRun: answer?.notRun, notRunCount: answer?.notRunCount }),
    );
  });

program
  .command('results')
  .description(
    "through the API (GET /jobs/{token}/results): download a job's latest results.csv (every record with its latest outcome)",
  )
  .argument('<token>', 'the job')
  .requiredOption('--site <id>', 'the site the job belongs to')
  .option('-o, --output <file>', 'where to write it (default: <token>-results.csv)')
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--json', 'print {file, attempt, encoding} as one JSON line')
  .action(
    async (
      jobToken: string,
      o: { site: string; output?: string; stateDir: string; endpoint?: string; json?: boolean },
    ) => {
      await withJobApi('results', jobToken, o, async (api) => {
        const r = await downloadResults(api, jobToken, o.output);
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else
          process.stdout.write(
            `results.csv of ${jobToken} (attempt ${r.attempt}, ${r.encoding}): ${r.file}\n`,
          );
      });
    },
  );

program
  .command('trace')
  .description(
    "through the API (GET /jobs/{token}/timeline): where a job's time went — its phases in seconds, one line per worker with its chunk attempts as a bar",
  )
  .argument('<token>', 'the job')
  .requiredOption('--site <id>', 'the site the job belongs to')
  .option('--width <n>', 'columns of the bars', positiveInt, 60)
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--json', 'print the timeline as JSON')
  .action(
    async (
      jobToken: string,
      o: { site: string; width: number; stateDir: string; endpoint?: string; json?: boolean },
    ) => {
      await withJobApi('trace', jobToken, o, async (api) => {
        const { fetchTimeline, formatTimeline } = await import('./trace.ts');
        const tl = await fetchTimeline(api, jobToken);
        process.stdout.write(o.json ? JSON.stringify(tl) + '\n' : formatTimeline(tl, o.width));
      });
    },
  );

program
  .command('sites')
  .description('list the configured sites')
  .option('--json', 'as a JSON array')
  .action((o: { json?: boolean }) => {
    const sites = loadConfig().sites.map((s) => ({
      id: s.id,
      name: s.name,
      timeZone: s.timeZone,
      sendAt: s.sendAt,
      offices: s.offices,
      recipients: s.recipients.filter((r) => r.active).map((r) => r.address),
      bcc: s.bcc,
    }));
    if (o.json) process.stdout.write(JSON.stringify(sites) + '\n');
    else
      for (const s of sites)
        process.stdout.write(`${s.id}\t${s.name}\t${s.timeZone} ${s.sendAt}\t${s.recipients.join(', ')}\n`);
  });

program
  .command('processors')
  .description('list the row processors (built-in and processors/*.ts) with what they declare')
  .option('--json', 'as a JSON array')
  .action(async (o: { json?: boolean }) => {
    const stage = getStage('local');
    const { listProcessors } = await import('../core/processors/index.ts');
    // Each user's file is inspected in a process of its own: a broken one is listed with its error, not fatal.
    const listed = (await listProcessors(stage.name)).map(({ name, processor: p, source, error }) =>
      p
        ? {
            name: p.name,
            description: p.description,
            source,
            concurrency: p.concurrency ?? null,
            costMs: p.costMs ?? 0,
            rateLimit: p.rateLimit
              ? { key: limiterName(p), perSecond: ratePerSecond(p, stage), stage: stage.name }
              : null,
            sideEffects: p.sideEffects ?? false,
            timeoutMs: p.timeoutMs ?? null,
          }
        : { name, source, broken: true, error: error ?? '' },
    );
    if (o.json) process.stdout.write(JSON.stringify(listed) + '\n');
    else
      for (const p of listed)
        process.stdout.write(
          'broken' in p
            ? `${p.name}\t${p.source}\tBROKEN: ${p.error}\n`
            : `${p.name}\t${p.source}\tconcurrency ${p.concurrency ?? 'default'}, cost ${p.costMs} ms` +
                (p.rateLimit
                  ? `, ${p.rateLimit.perSecond}/s (${p.rateLimit.key}, ${p.rateLimit.stage})`
                  : '') +
                (p.sideEffects ? ', side effects (at most once)' : '') +
                `\t${p.description}\n`,
        );
    const broken = listed.filter((p) => 'broken' in p).length;
    if (broken > 0)
      process.stderr.write(
        `${broken} processor file(s) broken: jobs naming them are refused (PROCESSOR_BROKEN)\n`,
      );
  });

program
  .command('smoke')
  .description(
    'post-deploy check through the public API: health, 401 without a token, a job with one bad record ending PARTIAL, its zip',
  )
  .requiredOption('--api <url>', 'the API base URL (the stack output ApiUrl)')
  .requiredOption('--token <token>', 'an API token of the site to test as')
  .option('--out <dir>', 'where to write the zip', 'out')
  .addOption(stallOption())
  .option('--json', 'print the steps as one JSON object as the last line of stdout')
  .action(async (o: { api: string; token: string; out: string; stallTimeout: number; json?: boolean }) => {
    const { smoke } = await import('./smoke.ts');
    const steps = await smoke(o.api, o.token, o.out, o.stallTimeout);
    const ok = steps.length > 0 && steps.every((s) => s.ok);
    if (o.json) process.stdout.write(JSON.stringify({ ok, steps }) + '\n');
    else
      for (const s of steps)
        process.stdout.write(
          `${s.ok ? 'ok  ' : 'FAIL'} ${s.step} (${s.ms} ms)${s.detail ? ` — ${s.detail}` : ''}\n`,
        );
    process.exitCode = ok ? 0 : 1;
  });

program
  .command('doctor')
  .description(
    'before a first `cdk deploy`: Node, the stage, Docker buildx for the image platform, and (with credentials) read-only AWS checks; prints what to do',
  )
  .requiredOption('--stage <name>', 'the stage to deploy (dev, stg, prod)')
  .option('--json', 'print the checks as one JSON object as the last line of stdout')
  .action(async (o: { stage: string; json?: boolean }) => {
    const { formatDoctor, runDoctor } = await import('./doctor.ts');
    const checks = await runDoctor(o.stage);
    const ok = checks.every((c) => c.status !== 'fail');
    if (o.json) process.stdout.write(JSON.stringify({ ok, stage: o.stage, checks }) + '\n');
    else process.stdout.write(formatDoctor(o.stage, checks) + '\n');
    process.exitCode = ok ? 0 : 1;
  });

const token = program.command('token').description('API tokens (each bound to one site)');
token
  .command('create')
  .description('issue an API token for a site (only its hash is stored)')
  .requiredOption('--site <id>', 'the site the token is bound to')
  .option('--table <name>', "a deployed stage's table (stack output TableName); uses your AWS credentials")
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .action(async (o: { site: string; table?: string; stateDir: string; endpoint?: string }) => {
    getSite(o.site);
    if (o.table) {
      const { ApiTokens } = await import('../core/intake/tokens.ts');
      process.stdout.write((await new ApiTokens(o.table).issue(o.site, 'cli')) + '\n');
      return;
    }
    const token = await withPipeline(o, (rt) => rt.issueToken(o.site));
    process.stdout.write(token + '\n');
  });

const mail = program
  .command('mail')
  .description("against the local state: a site's daily usage mail, and the mails the local SES took");
mail
  .command('send')
  .description("send a site's usage mail for a day (at most once per site and day; a repeat reports skipped)")
  .requiredOption('--site <id>', 'the site whose mail to send')
  .option('--day <YYYY-MM-DD>', "the reported day (default: yesterday in the site's time zone)")
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--json', 'print one JSON summary as the last line of stdout')
  .action(async (o: { site: string; day?: string; stateDir: string; endpoint?: string; json?: boolean }) => {
    process.exitCode = await (await import('./mail.ts')).mailSend(o);
  });
mail
  .command('preview')
  .description("render a site's usage mail for a day without sending it")
  .requiredOption('--site <id>', 'the site whose mail to render')
  .option('--day <YYYY-MM-DD>', "the reported day (default: yesterday in the site's time zone)")
  .option('--html', 'print the HTML part instead of the text part')
  .option('--json', 'print subject, recipients, totals and both parts as one JSON line')
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .action(
    async (o: {
      site: string;
      day?: string;
      html?: boolean;
      json?: boolean;
      stateDir: string;
      endpoint?: string;
    }) => {
      process.exitCode = await (await import('./mail.ts')).mailPreview(o);
    },
  );

mail
  .command('list')
  .description('the mails the local SES took (bulk mails name their job and row), oldest first')
  .option('--token <token>', "only this job's mails")
  .addOption(stateDirOption())
  .option('--json', 'one JSON array: {to, subject, messageId, token, n, sentAt} per mail')
  .action(async (o: { token?: string; stateDir: string; json?: boolean }) => {
    process.exitCode = await (await import('./mail.ts')).mailList(o);
  });

program
  .command('dev')
  .description(
    "keep the local runtime up (API, workers) and fire each site's usage-mail schedule at its local send time; Ctrl-C stops",
  )
  .addOption(stateDirOption())
  .addOption(endpointOption())
  .option('--send-now', "also fire every site's usage-mail schedule once at start")
  .addOption(maxWorkersOption())
  .action(async (o: { stateDir: string; endpoint?: string; sendNow?: boolean; maxWorkers?: number }) => {
    await (await import('./dev.ts')).runDev(o);
  });

try {
  await program.parseAsync();
} catch (err) {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
    process.exit(0);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`rowfleet: ${message}\n`);
  // A command asked for JSON always ends with its JSON line, an error one when it could not do its work.
  if (process.argv.includes('--json')) {
    process.stdout.write(
      JSON.stringify({ state: 'FAILED', error: { code: 'COMMAND_FAILED', message } }) + '\n',
    );
  }
  process.exitCode = 1;
}
