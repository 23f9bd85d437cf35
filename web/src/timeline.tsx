import { ApiError } from './client.ts';
import { ErrorBox } from './components.tsx';
import { usePoll } from './hooks.ts';
import { useI18n, type I18n, type Lang } from './i18n.ts';
import { useSession } from './session.ts';
import type { Timeline } from './types.ts';

/**
 * The job page's timeline (GET /jobs/{token}/timeline, issue 22): the phases on top (split, queue wait, workers,
 * finalize), then one lane per worker with a bar per chunk attempt — retried attempts hatched, given-up ones red
 * and crossed — drawn as an SVG over the job's time, live while the job runs. The same data as a table follows
 * (screen readers, exact figures); each bar also names itself in its <title>.
 */

const WORDS = {
  en: {
    title: 'Timeline',
    loading: 'Loading the timeline…',
    none: 'No spans were recorded for this job (tracing was off, or the job is older than tracing).',
    unavailable: 'The timeline could not be loaded',
    summary:
      '{workers} workers, {bars} chunk attempts ({retried} retried, {gaveUp} given up), {seconds} s so far',
    summaryDone:
      '{workers} workers, {bars} chunk attempts ({retried} retried, {gaveUp} given up), {seconds} s',
    split: 'Split',
    queueWait: 'Queue wait',
    workers: 'Workers',
    finalize: 'Finalize',
    worker: 'Worker {id}',
    start: 'start',
    legendDone: 'done',
    legendRetried: 'retried',
    legendGaveUp: 'given up',
    bar: 'chunk {chunk}, attempt {attempt}: {outcome}, {records} records, {from}–{to} s',
    phase: '{name}: {from}–{to} s ({seconds} s)',
    phaseOpen: '{name}: from {from} s, running',
    table: 'Show as a table',
    caption: 'Chunk attempts by worker (seconds from the job’s start)',
    colWorker: 'Worker',
    colChunk: 'Chunk',
    colAttempt: 'Attempt',
    colOutcome: 'Outcome',
    colRecords: 'Records',
    colFrom: 'From (s)',
    colTo: 'To (s)',
    trace: 'Trace id',
  },
  ja: {
    title: 'タイムライン',
    loading: 'タイムラインを読み込み中…',
    none: 'このジョブのスパンは記録されていません（トレースが無効か、トレース導入前のジョブです）。',
    unavailable: 'タイムラインを読み込めませんでした',
    summary:
      'ワーカー {workers} 台、チャンク処理 {bars} 回（再試行 {retried}、断念 {gaveUp}）、経過 {seconds} 秒',
    summaryDone:
      'ワーカー {workers} 台、チャンク処理 {bars} 回（再試行 {retried}、断念 {gaveUp}）、所要 {seconds} 秒',
    split: '分割',
    queueWait: 'ワーカー待ち',
    workers: 'ワーカー処理',
    finalize: '仕上げ',
    worker: 'ワーカー {id}',
    start: '起動',
    legendDone: '完了',
    legendRetried: '再試行',
    legendGaveUp: '断念',
    bar: 'チャンク {chunk}、{attempt} 回目: {outcome}、{records} 件、{from}〜{to} 秒',
    phase: '{name}: {from}〜{to} 秒（{seconds} 秒）',
    phaseOpen: '{name}: {from} 秒から実行中',
    table: '表で表示',
    caption: 'ワーカー別のチャンク処理（ジョブ開始からの秒数）',
    colWorker: 'ワーカー',
    colChunk: 'チャンク',
    colAttempt: '回',
    colOutcome: '結果',
    colRecords: '件数',
    colFrom: '開始（秒）',
    colTo: '終了（秒）',
    trace: 'トレース ID',
  },
} as const satisfies Record<Lang, Record<string, string>>;

type Word = keyof (typeof WORDS)['en'];
const word = (lang: Lang, key: Word, params: Record<string, string | number> = {}) =>
  WORDS[lang][key].replace(/\{(\w+)\}/g, (m, k: string) => (params[k] === undefined ? m : String(params[k])));

const POLL_MS = 2000;
/** After the job ended, its last spans (finalize, zip) are flushed a moment later: a few more polls fetch them. */
const SETTLE_MS = 15_000;

const COLOURS = { done: '#11663a', retried: '#8a4b00', gaveUp: '#b42318' } as const;
const PHASE_COLOURS = {
  split: '#0b5cad',
  queueWait: '#6b7280',
  workers: '#11663a',
  finalize: '#7c3aed',
} as const;
const LEGEND_KEY = { done: 'legendDone', retried: 'legendRetried', gaveUp: 'legendGaveUp' } as const;

export function JobTimeline({ token, live }: { token: string; live: boolean }) {
  const i = useI18n();
  const { api } = useSession();
  const tl = usePoll(
    (signal) => api.request<Timeline>('GET', `/jobs/${encodeURIComponent(token)}/timeline`, { signal }),
    POLL_MS,
    `${token}:timeline:${live}`,
    (d) => live || (!!d?.endsAt && Date.now() - Date.parse(d.endsAt) < SETTLE_MS && !d.phases.finalize),
  );
  const w = (key: Word, params?: Record<string, string | number>) => word(i.lang, key, params);
  const notLocal = tl.error instanceof ApiError && tl.error.code === 'TIMELINE_NOT_LOCAL';
  return (
    <section class="card" aria-labelledby="timeline-title" data-testid="timeline">
      <h2 id="timeline-title">{w('title')}</h2>
      {notLocal ? <p data-testid="timeline-not-local">{tl.error!.message}</p> : null}
      {tl.error && !notLocal ? <ErrorBox title={w('unavailable')} error={tl.error} /> : null}
      {!tl.data && !tl.error ? <p role="status">{w('loading')}</p> : null}
      {tl.data && tl.data.spans === 0 ? <p>{w('none')}</p> : null}
      {tl.data && tl.data.spans > 0 ? <Drawing tl={tl.data} i={i} /> : null}
    </section>
  );
}

function Drawing({ tl, i }: { tl: Timeline; i: I18n }) {
  const w = (key: Word, params?: Record<string, string | number>) => word(i.lang, key, params);
  const t0 = Date.parse(tl.startedAt);
  const end = tl.endsAt ? Date.parse(tl.endsAt) : Date.now();
  const total = Math.max(1, end - t0);
  const sec = (iso: string | undefined) => ((iso ? Date.parse(iso) : end) - t0) / 1000;
  const s1 = (n: number) => i.number(n, 1);
  // Layout in SVG units: labels on the left, the job's time across.
  const W = 1000;
  const LABEL = 170;
  const ROW = 22;
  const x = (iso: string | undefined) => LABEL + ((sec(iso) * 1000) / total) * (W - LABEL - 10);
  const phases = (['split', 'queueWait', 'workers', 'finalize'] as const).filter((k) => tl.phases[k]);
  const top = 20;
  const laneTop = top + phases.length * ROW + 14;
  const height = laneTop + tl.lanes.length * ROW + 10;
  const bars = tl.lanes.flatMap((l) => l.bars);
  const retried = bars.filter((b) => b.outcome === 'retried').length;
  const gaveUp = bars.filter((b) => b.outcome === 'gaveUp').length;
  const summary = w(tl.endsAt ? 'summaryDone' : 'summary', {
    workers: tl.lanes.length,
    bars: bars.length,
    retried,
    gaveUp,
    seconds: s1(total / 1000),
  });
  const ticks = niceTicks(total / 1000);
  return (
    <>
      <p data-testid="timeline-summary">{summary}</p>
      <ul class="legend" aria-hidden="true">
        {(['done', 'retried', 'gaveUp'] as const).map((o) => (
          <li key={o}>
            <svg width="14" height="10" viewBox="0 0 14 10">
              <rect width="14" height="10" fill={COLOURS[o]} />
            </svg>{' '}
            {w(LEGEND_KEY[o])}
          </li>
        ))}
      </ul>
      <div class="table-wrap">
        <svg
          viewBox={`0 0 ${W} ${height}`}
          width="100%"
          role="img"
          aria-labelledby="timeline-title timeline-desc"
          data-testid="timeline-svg"
        >
          <desc id="timeline-desc">{summary}</desc>
          <defs>
            <pattern
              id="tl-hatch"
              patternUnits="userSpaceOnUse"
              width="6"
              height="6"
              patternTransform="rotate(45)"
            >
              <rect width="6" height="6" fill="#fde68a" />
              <line x1="0" y1="0" x2="0" y2="6" stroke={COLOURS.retried} stroke-width="3" />
            </pattern>
          </defs>
          {ticks.map((s) => {
            const tx = LABEL + ((s * 1000) / total) * (W - LABEL - 10);
            return (
              <g key={s}>
                <line x1={tx} x2={tx} y1={top - 4} y2={height} stroke="#e5e7eb" />
                <text x={tx} y={12} font-size="10" text-anchor="middle" fill="#4b5563">
                  {`${i.number(s, 1)} s`}
                </text>
              </g>
            );
          })}
          {phases.map((k, n) => {
            const p = tl.phases[k]!;
            const y = top + n * ROW;
            const label = p.end
              ? w('phase', {
                  name: w(k),
                  from: s1(sec(p.start)),
                  to: s1(sec(p.end)),
                  seconds: s1(p.seconds ?? 0),
                })
              : w('phaseOpen', { name: w(k), from: s1(sec(p.start)) });
            return (
              <g key={k} data-testid={`phase-${k}`}>
                <text x={4} y={y + 14} font-size="12" fill="#1b1f24">
                  {w(k)}
                </text>
                <rect
                  x={x(p.start)}
                  y={y + 3}
                  width={Math.max(2, x(p.end) - x(p.start))}
                  height={ROW - 8}
                  fill={PHASE_COLOURS[k]}
                  opacity={p.end ? 1 : 0.6}
                >
                  <title>{label}</title>
                </rect>
              </g>
            );
          })}
          {tl.lanes.map((l, n) => {
            const y = laneTop + n * ROW;
            return (
              <g key={l.worker} data-testid="timeline-lane" data-worker={l.worker}>
                <text x={4} y={y + 14} font-size="12" fill="#1b1f24">
                  {l.worker.length > 22 ? `${l.worker.slice(0, 21)}…` : l.worker}
                </text>
                {l.started ? (
                  <rect
                    x={x(l.started.start)}
                    y={y + 9}
                    width={Math.max(1, x(l.started.end) - x(l.started.start))}
                    height={4}
                    fill="#9ca3af"
                  >
                    <title>{`${w('start')} ${s1(l.started.seconds ?? 0)} s`}</title>
                  </rect>
                ) : null}
                {l.bars.map((b) => {
                  const bx = x(b.start);
                  const bw = Math.max(2, x(b.end) - bx);
                  return (
                    <g
                      key={`${b.jobAttempt}:${b.chunk}:${b.attempt}:${b.start}`}
                      data-testid="timeline-bar"
                      data-outcome={b.outcome}
                    >
                      <rect
                        x={bx}
                        y={y + 2}
                        width={bw}
                        height={ROW - 6}
                        fill={b.outcome === 'retried' ? 'url(#tl-hatch)' : COLOURS[b.outcome]}
                        stroke="#ffffff"
                      >
                        <title>
                          {w('bar', {
                            chunk: b.chunk,
                            attempt: b.attempt,
                            outcome: w(LEGEND_KEY[b.outcome]),
                            records: i.number(b.records),
                            from: s1(sec(b.start)),
                            to: s1(sec(b.end)),
                          })}
                        </title>
                      </rect>
                      {b.outcome === 'gaveUp' ? (
                        <text x={bx + bw / 2} y={y + 15} font-size="12" text-anchor="middle" fill="#ffffff">
                          ✗
                        </text>
                      ) : null}
                    </g>
                  );
                })}
              </g>
            );
          })}
        </svg>
      </div>
      {tl.traceId ? (
        <p class="muted">
          {w('trace')}: <code>{tl.traceId}</code>
        </p>
      ) : null}
      <details>
        <summary>{w('table')}</summary>
        <div class="table-wrap">
          <table class="responsive" data-testid="timeline-table">
            <caption>{w('caption')}</caption>
            <thead>
              <tr>
                <th scope="col">{w('colWorker')}</th>
                <th scope="col">{w('colChunk')}</th>
                <th scope="col">{w('colAttempt')}</th>
                <th scope="col">{w('colOutcome')}</th>
                <th scope="col">{w('colRecords')}</th>
                <th scope="col">{w('colFrom')}</th>
                <th scope="col">{w('colTo')}</th>
              </tr>
            </thead>
            <tbody>
              {tl.lanes.flatMap((l) =>
                l.bars.map((b) => (
                  <tr key={`${l.worker}:${b.jobAttempt}:${b.chunk}:${b.attempt}:${b.start}`}>
                    <td data-label={w('colWorker')}>{l.worker}</td>
                    <td data-label={w('colChunk')} class="num">
                      {b.chunk}
                    </td>
                    <td data-label={w('colAttempt')} class="num">
                      {b.attempt}
                    </td>
                    <td data-label={w('colOutcome')}>{w(LEGEND_KEY[b.outcome])}</td>
                    <td data-label={w('colRecords')} class="num">
                      {i.number(b.records)}
                    </td>
                    <td data-label={w('colFrom')} class="num">
                      {s1(sec(b.start))}
                    </td>
                    <td data-label={w('colTo')} class="num">
                      {s1(sec(b.end))}
                    </td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </div>
      </details>
    </>
  );
}

/** About five round tick marks over `seconds`. */
function niceTicks(seconds: number): number[] {
  const raw = seconds / 5;
  const pow = 10 ** Math.floor(Math.log10(Math.max(raw, 0.001)));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const out: number[] = [];
  for (let s = 0; s <= seconds + 1e-9; s += step) out.push(Math.round(s * 1000) / 1000);
  return out;
}
