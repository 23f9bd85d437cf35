import { Cron } from 'croner';
import type { SiteConfig } from '../config/index.ts';
import type { UsageMailInput } from '../core/usage/mail.ts';
import { dailyCronPattern } from '../core/usage/days.ts';

/** The input EventBridge Scheduler sends a site's usage-mail target (core's schema of it). */
export type SiteScheduleInput = UsageMailInput;

export { dailyCronPattern };

/** An instant as `<aws.scheduler.scheduled-time>` writes it: UTC, whole seconds (2026-11-21T22:00:00Z). */
export function schedulerTime(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface FiredSchedule {
  readonly input: SiteScheduleInput;
  readonly result?: unknown;
  readonly error?: unknown;
}

/**
 * The local stand-in for the stage's EventBridge Scheduler schedules: one daily schedule per site at its `sendAt`
 * in its `timeZone`, each invoking `target` with `{site, scheduledTime}` exactly as the Scheduler does — the site
 * comes only from that input. A schedule never overlaps itself.
 */
export class LocalSiteSchedules {
  private readonly jobs = new Map<string, Cron>();
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly sites: readonly SiteConfig[],
    private readonly target: (input: SiteScheduleInput) => Promise<unknown>,
    private readonly onFired: (fired: FiredSchedule) => void = () => {},
  ) {}

  start(): this {
    for (const site of this.sites) {
      const pattern = dailyCronPattern(site.sendAtTime);
      const job = new Cron(pattern, { timezone: site.timeZone, protect: true }, async () => {
        // Croner fires at second 0 of the minute (a few ms late): the scheduled time is that minute.
        await this.fire(site.id, new Date(Math.floor(Date.now() / 60_000) * 60_000));
      });
      this.jobs.set(site.id, job);
    }
    return this;
  }

  /** When each site's schedule fires next. */
  nextRuns(): { readonly site: string; readonly at: Date }[] {
    return this.sites.map((s) => ({
      site: s.id,
      at:
        this.jobs.get(s.id)?.nextRun() ??
        new Cron(dailyCronPattern(s.sendAtTime), { timezone: s.timeZone }).nextRun()!,
    }));
  }

  /** Invokes the site's target now, as a firing scheduled for `at` (default: now). */
  fire(site: string, at: Date = new Date()): Promise<unknown> {
    const input: SiteScheduleInput = { site, scheduledTime: schedulerTime(at) };
    const run = this.target(input).then(
      (result) => {
        this.onFired({ input, result });
        return result;
      },
      (error: unknown) => {
        this.onFired({ input, error });
        return undefined;
      },
    );
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return run;
  }

  /** Stops every schedule and waits for the invocations in flight. */
  async stop(): Promise<void> {
    for (const job of this.jobs.values()) job.stop();
    this.jobs.clear();
    await Promise.all(this.running);
  }
}
