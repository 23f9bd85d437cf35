import type { CheckAnswer, SampleOutput } from '../core/intake/check.ts';

/** Lines of a sample mail's text part `rowfleet check` prints. */
const TEXT_LINES = 3;

const usd = (x: number) => `$${x < 0.01 ? x.toFixed(6) : x.toFixed(4)}`;
const jpy = (x: number) => `¥${x.toFixed(2)}`;

function sample(o: SampleOutput): string[] {
  switch (o.kind) {
    case 'mail':
      return [
        `to ${o.to} (from ${o.from})`,
        `subject: ${o.subject}`,
        ...o.text
          .split(/\r?\n/)
          .filter((l) => l.trim() !== '')
          .slice(0, TEXT_LINES)
          .map((l) => `| ${l}`),
      ];
    case 'entries':
      return o.entries.map((e) => `${e.name} (${e.contentType}, ${Buffer.byteLength(e.text)} bytes)`);
    case 'error':
      return [`would fail: ${o.code}: ${o.message}`];
    case 'none':
      return [`no preview: ${o.reason}`];
  }
}

/** The human summary of a check (`rowfleet check` without --json). */
export function formatCheck(c: CheckAnswer): string {
  const out: string[] = [];
  const what = `${c.processor}${c.template ? ` (template ${c.template})` : ''}`;
  out.push(
    `${c.fileName ?? 'file'} as ${c.site}, processor ${what}: ${c.ok ? 'OK' : 'NOT OK — the run would be refused'}`,
  );
  const delimiter = c.delimiter === '\t' ? 'tab' : `"${c.delimiter}"`;
  out.push(
    `encoding ${c.encoding ?? 'unknown'}, delimiter ${delimiter}, ${c.header.length} columns; ` +
      `${c.records} records: ${c.valid} valid, ${c.rejected.count} rejected`,
  );
  for (const p of c.problems)
    out.push(`problem: ${p.code}${p.line !== undefined ? ` (line ${p.line})` : ''}: ${p.message}`);
  if (c.needs.missing.length > 0) out.push(`missing columns: ${c.needs.missing.join(', ')}`);
  const first = c.rejected.first[0];
  if (first)
    out.push(`first rejected: record ${first.record} (line ${first.line}) ${first.code}: ${first.message}`);
  for (const s of c.samples) {
    const [head, ...rest] = sample(s.output);
    out.push(`record ${s.record} (line ${s.line}): ${head ?? ''}`, ...rest.map((l) => `    ${l}`));
  }
  const e = c.estimate;
  out.push(
    `estimate: ${e.workers} worker${e.workers === 1 ? '' : 's'} (${e.workersNow} free now), about ${e.seconds.toFixed(1)} s; ` +
      `${usd(e.usd)} = ${jpy(e.jpy)} at ¥${e.jpyPerUsd}/$ (${e.region} list prices as of ${e.pricesAsOf})`,
  );
  for (const b of e.breakdown) out.push(`    ${b.service.padEnd(8)} ${usd(b.usd).padStart(10)}  ${b.basis}`);
  return out.join('\n') + '\n';
}
