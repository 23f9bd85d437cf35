import { Cron } from 'croner';

/**
 * Calendar days of the usage figures and mails. A day is `YYYY-MM-DD` in a site's own time zone; it is always
 * derived from an instant that travels with the work (a job's finish time, a schedule's `scheduledTime`), never
 * from the clock of the process that happens to run it.
 */

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const formats = new Map<string, Intl.DateTimeFormat>();

/** True for a real calendar day written `YYYY-MM-DD` (2026-02-30 is not one). */
export function isDay(value: string): boolean {
  const m = DAY_RE.exec(value);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === value;
}

function checkDay(day: string): void {
  if (!isDay(day)) throw new Error(`expected a day as YYYY-MM-DD, got "${day}"`);
}

/** The calendar day of `instant` in `timeZone` (an IANA name such as Asia/Tokyo). */
export function localDay(instant: Date, timeZone: string): string {
  if (Number.isNaN(instant.getTime())) throw new Error('localDay: invalid instant');
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formats.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(instant).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** `day` moved by `n` calendar days (negative: back). */
export function addDays(day: string, n: number): string {
  checkDay(day);
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/**
 * The day a usage mail reports: the calendar day before the one on which the schedule fired, in the site's time
 * zone. Only the schedule's `scheduledTime` counts, so a retry or a late invocation reports the same day.
 */
export function reportedDay(scheduledTime: string | Date, timeZone: string): string {
  const at = typeof scheduledTime === 'string' ? new Date(scheduledTime) : scheduledTime;
  if (Number.isNaN(at.getTime())) throw new Error(`invalid scheduledTime "${String(scheduledTime)}"`);
  return addDays(localDay(at, timeZone), -1);
}

/**
 * The month (`YYYY-MM`) whose totals the mail for `day` also carries: the mail sent on the 1st reports the
 * previous month's last day, and then the whole of that month. Undefined on every other day.
 */
export function monthToReport(day: string): string | undefined {
  return addDays(day, 1).endsWith('-01') ? day.slice(0, 7) : undefined;
}

/** First and last day of a month `YYYY-MM`. */
export function monthRange(month: string): { readonly from: string; readonly to: string } {
  const from = `${month}-01`;
  checkDay(from);
  const [y, m] = month.split('-').map(Number) as [number, number];
  const to = new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
  return { from, to };
}

const WEEKDAYS = ['日', '月', '火', '水', '木', '金', '土'] as const;

/** 2026-11-21 → 2026年11月21日（土） */
export function japaneseDate(day: string): string {
  checkDay(day);
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const weekday = WEEKDAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()]!;
  return `${y}年${m}月${d}日（${weekday}）`;
}

/** 2026-11 → 2026年11月 */
export function japaneseMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return `${y}年${m}月`;
}

/** A site's send time (its parsed `sendAt`) → a croner pattern firing at that local minute every day (second 0). */
export function dailyCronPattern(t: { readonly hour: number; readonly minute: number }): string {
  return `0 ${t.minute} ${t.hour} * * *`;
}

/** When a site's daily schedule (its `sendAt` in its `timeZone`) fires next after `now`. */
export function nextSendAt(
  t: { readonly hour: number; readonly minute: number },
  timeZone: string,
  now: Date,
): Date {
  const next = new Cron(dailyCronPattern(t), { timezone: timeZone }).nextRun(now);
  if (!next) throw new Error(`no next run for ${dailyCronPattern(t)} in ${timeZone}`);
  return next;
}

/** `instant` as ISO 8601 with the time zone's offset: 2026-11-22T07:00:00+09:00. */
export function withOffset(instant: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'longOffset',
    })
      .formatToParts(instant)
      .map((p) => [p.type, p.value]),
  );
  const offset = String(parts.timeZoneName).replace('GMT', '') || '+00:00';
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}

/** Days from `from` to `to`, both included (YYYY-MM-DD, ascending); empty when `from` is after `to`. */
export function daysBetween(from: string, to: string): string[] {
  checkDay(from);
  checkDay(to);
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}
