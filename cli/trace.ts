import type { Timeline, TimelinePhase } from '../core/shared/timeline.ts';
import { ApiError } from './run-job.ts';

/** GET /jobs/{token}/timeline of the caller's site. */
export async function fetchTimeline(
  api: { apiUrl: string; apiToken: string },
  token: string,
): Promise<Timeline> {
  const res = await fetch(`${api.apiUrl}/jobs/${encodeURIComponent(token)}/timeline`, {
    headers: { authorization: `Bearer ${api.apiToken}` },
  });
  const text = await res.text();
  const body = (text ? JSON.parse(text) : {}) as Timeline & { error?: { code: string; message: string } };
  if (!res.ok)
    throw new ApiError(res.status, body.error?.code ?? `HTTP_${res.status}`, body.error?.message ?? text);
  return body;
}

const MARK = { done: '#', retried: '~', gaveUp: 'X' } as const;
const secs = (p?: TimelinePhase) =>
  p?.seconds !== undefined ? `${p.seconds.toFixed(1)} s` : p ? 'running' : '—';

/**
 * `rowfleet trace`: the job's timeline in a terminal — its phases in seconds (and their share of the job), then one
 * line per worker with its start latency, chunks and records, and its chunk attempts drawn as a bar over the job's
 * time (`#` done, `~` retried, `X` given up; one column is `(end − start) ÷ width`).
 */
export function formatTimeline(tl: Timeline, width = 60, now = Date.now()): string {
  const start = Date.parse(tl.startedAt);
  const end = tl.endsAt ? Date.parse(tl.endsAt) : now;
  const total = Math.max(1, end - start);
  const col = (iso: string) =>
    Math.min(width - 1, Math.max(0, Math.floor(((Date.parse(iso) - start) / total) * width)));
  const bar = (fill: (cells: string[]) => void) => {
    const cells = Array<string>(width).fill(' ');
    fill(cells);
    return `|${cells.join('')}|`;
  };
  const span = (cells: string[], from: string, to: string | undefined, mark: string) => {
    for (let i = col(from); i <= col(to ?? new Date(end).toISOString()); i++) cells[i] = mark;
  };
  const pct = (p?: TimelinePhase) =>
    p?.seconds !== undefined ? ` ${Math.round((p.seconds * 100000) / total)}%` : '';
  const lines = [
    `job ${tl.token} (${tl.site}${tl.attempt > 1 ? `, attempt ${tl.attempt}` : ''}): ${tl.state}, ` +
      `${((end - start) / 1000).toFixed(1)} s${tl.endsAt ? '' : ' so far'}` +
      (tl.traceId ? `, trace ${tl.traceId}` : ''),
  ];
  if (tl.spans === 0) {
    lines.push('no spans recorded for this job (tracing was off, or the job is older than tracing)');
    return lines.join('\n') + '\n';
  }
  const phases: [string, TimelinePhase | undefined, string][] = [
    ['split', tl.phases.split, 'S'],
    ['queue wait', tl.phases.queueWait, 'q'],
    ['workers', tl.phases.workers, 'W'],
    ['finalize', tl.phases.finalize, 'F'],
  ];
  for (const [name, p, mark] of phases) {
    const extra = name === 'finalize' && tl.zip ? ` (zip ${secs(tl.zip)})` : '';
    lines.push(
      `  ${name.padEnd(11)}${secs(p).padStart(9)}${pct(p).padStart(5)}  ` +
        bar((c) => p && span(c, p.start, p.end, mark)) +
        extra,
    );
  }
  const bars = tl.lanes.flatMap((l) => l.bars);
  const retried = bars.filter((b) => b.outcome === 'retried').length;
  const gaveUp = bars.filter((b) => b.outcome === 'gaveUp').length;
  lines.push(
    `workers: ${tl.lanes.length}, chunk attempts: ${bars.length} (${retried} retried, ${gaveUp} given up); ` +
      `${MARK.done} done, ${MARK.retried} retried, ${MARK.gaveUp} given up, one column = ${(total / width / 1000).toFixed(2)} s`,
  );
  for (const l of tl.lanes) {
    const records = l.bars.filter((b) => b.outcome === 'done').reduce((a, b) => a + b.records, 0);
    const busy = l.bars.reduce((a, b) => a + Date.parse(b.end) - Date.parse(b.start), 0) / 1000;
    lines.push(
      `  ${l.worker.padEnd(16).slice(0, 16)} start ${secs(l.started).padStart(7)}  ` +
        `${String(l.bars.length).padStart(3)} chunks ${String(records).padStart(8)} rec ${busy.toFixed(1).padStart(6)} s busy  ` +
        bar((c) => {
          for (const b of l.bars) span(c, b.start, b.end, MARK[b.outcome]);
        }),
    );
  }
  return lines.join('\n') + '\n';
}
