/**
 * Load-test records, generated in the browser by the console and in Node by `rowfleet loadtest`
 * (cli/gen-data.ts imports them): deterministic (xorshift), so runs and benchmarks are comparable. Pure code
 * with no Node or DOM API, so it runs in both.
 */
const SURNAMES = ['山田', '鈴木', '佐藤', '田中', '高橋', '渡辺', '伊藤', '中村', '小林', '加藤'];
const GIVEN = ['太郎', '花子', '次郎', '美咲', '健一', '陽子', '翔太', '結衣', '大輔', '真由美'];
const CITIES = ['堺市', '川崎市', '鹿嶋市', '倉敷市', '岩国市', '大阪市', '横浜市', '名古屋市'];
const ITEMS = ['鋼板', 'コイル', '線材', '厚板', '鋼管', 'ステンレス', '形鋼', 'めっき鋼板'];

export const SAMPLE_HEADER = ['id', '氏名', '市区町村', '品目', '数量', '単価', '受注日', '備考'];

/** Deterministic pseudo-random records; fields are plain or already quoted CSV. */
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

/** The CSV text of `count` sample records with a header (CRLF line ends, as Excel writes), in parts of ~1 MB. */
export function sampleCsvParts(count: number): string[] {
  const parts: string[] = [];
  let part = SAMPLE_HEADER.join(',') + '\r\n';
  for (const r of sampleRecords(count)) {
    part += r.join(',') + '\r\n';
    if (part.length > 1_000_000) {
      parts.push(part);
      part = '';
    }
  }
  if (part) parts.push(part);
  return parts;
}
