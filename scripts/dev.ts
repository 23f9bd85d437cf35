/**
 * `rowfleet dev`: the local runtime kept up — API, workers, finalize, and each site's usage-mail schedule fired
 * at its local send time with the input EventBridge Scheduler sends, through the same usage-mail handler.
 */
import { loadConfig } from '../config/index.ts';
import type { UsageMailResult } from '../core/usage/mail.ts';
import { errorMessage } from '../core/shared/errors.ts';
import { attachRuntime } from '../local/attach.ts';
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
 * of the same state directory share it meanwhile. Then the schedules stop, and the runtime too when no other
 * command uses it (workers, then the emulators, whose state is saved).
 */
export async function runDev(o: DevOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  // Listening first: a Ctrl-C while the runtime starts still stops in order (after it is up).
  const stop = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const rt = await attachRuntime({ stateDir: o.stateDir, endpoint: o.endpoint, maxWorkers: o.maxWorkers });
  const sites = loadConfig().sites;
  const schedules = new LocalSiteSchedules(
    sites,
    (input) => rt.usageMail(input),
    (f) => (f.error === undefined ? out : process.stderr).write(describe(f) + '\n'),
  ).start();
  try {
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
    out.write(lines.join('\n') + '\n');
    if (o.sendNow) await Promise.all(sites.map((s) => schedules.fire(s.id)));
    const signal = await stop;
    out.write(`${signal}: stopping…\n`);
  } finally {
    await schedules.stop();
    await rt.detach();
  }
  out.write('Stopped.\n');
}
