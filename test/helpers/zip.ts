import { buffer } from 'node:stream/consumers';
import yauzl from 'yauzl';

export interface ZipEntryData {
  readonly name: string;
  readonly data: Buffer;
}

/** Reads every entry of a zip (in central-directory order) with yauzl, checking sizes and CRCs. */
export async function readZip(zip: Buffer | string): Promise<ZipEntryData[]> {
  const options = { lazyEntries: true, validateEntrySizes: true, strictFileNames: true };
  const file =
    typeof zip === 'string'
      ? await yauzl.openPromise(zip, options)
      : await yauzl.fromBufferPromise(zip, options);
  const out: ZipEntryData[] = [];
  try {
    for await (const entry of file.eachEntry()) {
      out.push({ name: entry.fileName, data: await buffer(await file.openReadStreamPromise(entry)) });
    }
  } finally {
    file.close();
  }
  return out;
}

/** The entries of a zip as a map from name to text (UTF-8). */
export async function readZipText(zip: Buffer | string): Promise<Map<string, string>> {
  return new Map((await readZip(zip)).map((e) => [e.name, e.data.toString('utf8')]));
}
