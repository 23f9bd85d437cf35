/**
 * `rowfleet dev`: the local runtime kept up — API, workers, finalize, and each site's usage-mail schedule fired
 * at its local send time with the input EventBridge Scheduler sends, through the same usage-mail handler.
 */
import { loadConfig } from '../config/index.ts';
import type { SiteConfig } from '../config/schema.ts';
import type { UsageMailResult } from '../core/usage/mail.ts';
import { errorMessage } from '../core/shared/errors.ts';
import { attachRuntime, type AttachedRuntime } from '../local/attach.ts';
import { LocalSiteSchedules, type FiredSchedule } from '../local/scheduler.ts';

export interface DevOptions {
  readonly stateDir: string;
  readonly endpoint?: string;
  /** Also fire every site's schedule once right away (scheduledTime = now). */
  readonly sendNow?: boolean;
  /** The runtime's worker budget (`--max-workers`). */
  readonly maxWorkers?: number;
}

function describe(f: FiredSchedule): string {
  const at = `usage mail ${f.input.site} (scheduledTime ${f.input.scheduledTime})`;
  if (f.error !== undefined) return `${at}: failed: ${errorMessage(f.error)}`;
  const r = f.result as UsageMailResult;
  const id = r.messageId ? ` ${r.messageId}` : '';
  return `${at}: ${r.day} ${r.status}${id} → ${r.to.join(', ')} (bcc ${r.bcc.join(', ')})${r.reason ? ` ${r.reason}` : ''}`;
}

/**
 * Runs until SIGINT/SIGTERM, attached to the state directory's runtime (started when none runs): other commands
 * of the same state directory share it meanwhile. A runtime that dies (or stops) meanwhile is started again and
 * attached to — it resumes its jobs — and dev says Ready again with its new addresses; if it cannot be started,
 * dev exits 1 saying why. Then the schedules stop, and the runtime too when no other command uses it (workers,
 * then the emulators, whose state is saved).
 */
export async function runDev(o: DevOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  // Listening first: a Ctrl-C while the runtime starts still stops in order (after it is up).
  const stop = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const attach = () =>
    attachRuntime({ stateDir: o.stateDir, endpoint: o.endpoint, maxWorkers: o.maxWorkers });
  let rt = await attach();
  const sites = loadConfig().sites;
  const schedules = new LocalSiteSchedules(
    sites,
    (input) => rt.usageMail(input),
    (f) => (f.error === undefined ? out : process.stderr).write(describe(f) + '\n'),
  ).start();
  let detach = true;
  try {
    out.write((await readyLines(rt, sites, schedules)).join('\n') + '\n');
    if (o.sendNow) await Promise.all(sites.map((s) => schedules.fire(s.id)));
    for (;;) {
      // Watches its runtime: one that died (or stopped) is started again and attached to (it resumes its jobs).
      const signal = await Promise.race([stop, rt.lost.then(() => undefined)]);
      if (signal !== undefined) {
        out.write(`${signal}: stopping…\n`);
        break;
      }
      out.write(`The local runtime of ${rt.stateDir} stopped; starting it again…\n`);
      try {
        rt = await attach();
      } catch (err) {
        detach = false;
        process.stderr.write(
          `rowfleet dev: the local runtime stopped and could not be started again: ${errorMessage(err)}\n`,
        );
        process.exitCode = 1;
        return;
      }
      out.write((await readyLines(rt, sites, schedules)).join('\n') + '\n');
    }
  } finally {
    await schedules.stop();
    if (detach) await rt.detach();
  }
  out.write('Stopped.\n');
}

/** What `dev` says once its runtime is up (again): where everything is, the tokens, the schedules, Ready. */
async function readyLines(
  rt: AttachedRuntime,
  sites: readonly SiteConfig[],
  schedules: LocalSiteSchedules,
): Promise<string[]> {
  const lines = [
    `Rowfleet local runtime (stage ${rt.stage}, state ${rt.stateDir}; ${rt.started ? 'started' : 'already running, attached'})`,
    `  API:         ${rt.apiUrl}`,
    `  console: ${rt.consoleUrl}`,
    `  mail viewer: ${rt.mailViewerUrl ?? '(external endpoint: see its own console)'}`,
    '  API tokens (Authorization: Bearer <token>), one per site:',
  ];
  for (const s of sites) lines.push(`    ${s.id.padEnd(12)} ${await rt.tokenFor(s.id)}`);
  lines.push('  usage-mail schedules:');
  for (const { site, at } of schedules.nextRuns()) {
    const s = sites.find((x) => x.id === site)!;
    lines.push(`    ${site.padEnd(12)} ${s.sendAt} ${s.timeZone}, next ${at.toISOString()}`);
  }
  lines.push(
    `  e.g. curl -H "Authorization: Bearer <token>" --data-binary @samples/clients.csv -H 'content-type: text/csv' ${rt.apiUrl}/jobs`,
    'Ready. Press Ctrl-C to stop.',
  );
  return lines;
}
