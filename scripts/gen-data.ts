import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import iconv from 'iconv-lite';

const SURNAMES = ['山田', '鈴木', '佐藤', '田中', '高橋', '渡辺', '伊藤', '中村', '小林', '加藤'];
const GIVEN = ['太郎', '花子', '次郎', '美咲', '健一', '陽子', '翔太', '結衣', '大輔', '真由美'];
const CITIES = ['堺市', '川崎市', '鹿嶋市', '倉敷市', '岩国市', '大阪市', '横浜市', '名古屋市'];
const ITEMS = ['鋼板', 'コイル', '線材', '厚板', '鋼管', 'ステンレス', '形鋼', 'めっき鋼板'];

export const SAMPLE_HEADER = ['id', '氏名', '市区町村', '品目', '数量', '単価', '受注日', '備考'];

/** The recipient a mail load test writes for record `n` (one address per record, none twice). */
export const sampleRecipient = (n: number) => `user-${n}@example.com`;

/** Deterministic pseudo-random records (xorshift), so runs and benchmarks are comparable. */
export function* sampleRecords(count: number, seed = 42): Generator<string[]> {
  let x = seed >>> 0 || 1;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  for (let i = 1; i <= count; i++) {
    const note = rnd(10) === 0 ? `"至急, 午前着 ""指定"""` : rnd(5) === 0 ? '再送' : '';
    yield [
      String(i),
      SURNAMES[rnd(10)]! + ' ' + GIVEN[rnd(10)]!,
      CITIES[rnd(8)]!,
      ITEMS[rnd(8)]!,
      String(1 + rnd(500)),
      String(100 + rnd(90000)),
      `2026-${String(1 + rnd(12)).padStart(2, '0')}-${String(1 + rnd(28)).padStart(2, '0')}`,
      note,
    ];
  }
}

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
