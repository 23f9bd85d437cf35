import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';

/** One row of a zip's results.csv: the file's columns by name, then what became of the record. */
export interface ResultRow {
  readonly fields: string[];
  readonly record: number;
  readonly line: number;
  readonly status: string;
  readonly code: string;
  readonly message: string;
  readonly output: string;
}

/** results.csv's bytes read back (CP932, or UTF-8 with a BOM, which it must start with): its header and rows. */
export function parseResultsCsv(
  data: Buffer,
  encoding: 'cp932' | 'utf-8-bom',
): { header: string[]; rows: ResultRow[]; text: string } {
  if (encoding === 'utf-8-bom' && !data.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])))
    throw new Error('results.csv has no UTF-8 BOM');
  const text = encoding === 'cp932' ? iconv.decode(data, 'cp932') : data.subarray(3).toString('utf8');
  const records = parse(text, { relax_column_count: false }) as string[][];
  const [header, ...body] = records;
  return {
    header: header!,
    text,
    rows: body.map((r) => {
      const tail = r.slice(-6);
      return {
        fields: r.slice(0, -6),
        record: Number(tail[0]),
        line: Number(tail[1]),
        status: tail[2]!,
        code: tail[3]!,
        message: tail[4]!,
        output: tail[5]!,
      };
    }),
  };
}
