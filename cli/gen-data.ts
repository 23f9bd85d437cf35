import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import iconv from 'iconv-lite';

// The records are the console's load-test records (web/src/sample-data.ts, pure code that runs in both): a load
// test from the console and one from `rowfleet loadtest` send the same file.
import { SAMPLE_HEADER, sampleRecords } from '../web/src/sample-data.ts';

export { SAMPLE_HEADER, sampleRecords };

/** The recipient a mail load test writes for record `n` (one address per record, none twice). */
export const sampleRecipient = (n: number) => `user-${n}@example.com`;

function csvLine(fields: string[]): string {
  // Fields in sampleRecords are either plain or already quoted.
  return fields.join(',') + '\r\n';
}

/**
 * Writes a sample CSV of `count` records (CRLF, as Excel writes) in UTF-8 or CP932; with `email`, an `email`
 * column of distinct recipients (the `mail` processor's load test).
 */
export async function writeSampleCsv(
  path: string,
  count: number,
  encoding: 'utf-8' | 'cp932' = 'utf-8',
  o: { readonly email?: boolean } = {},
): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  const write = async (s: string) => {
    const b = encoding === 'cp932' ? iconv.encode(s, 'cp932') : Buffer.from(s, 'utf8');
    bytes += b.length;
    if (!out.write(b)) await once(out, 'drain');
  };
  await write(csvLine(o.email ? [...SAMPLE_HEADER, 'email'] : SAMPLE_HEADER));
  let batch = '';
  let n = 0;
  for (const r of sampleRecords(count)) {
    batch += csvLine(o.email ? [...r, sampleRecipient(n + 1)] : r);
    if (++n % 2000 === 0) {
      await write(batch);
      batch = '';
    }
  }
  if (batch) await write(batch);
  out.end();
  await once(out, 'close');
  return bytes;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [path, count, enc] = process.argv.slice(2);
  if (!path || !count) {
    process.stderr.write('usage: gen-data.ts <out.csv> <records> [utf-8|cp932]\n');
    process.exit(1);
  }
  const bytes = await writeSampleCsv(path, Number(count), enc === 'cp932' ? 'cp932' : 'utf-8');
  process.stdout.write(`${path}: ${count} records, ${bytes} bytes\n`);
}
