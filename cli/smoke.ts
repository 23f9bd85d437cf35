import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { runJob } from './run-job.ts';

/** A small CSV with one record that has a field too few: the job must end PARTIAL. */
const SMOKE_CSV = '顧客ID,氏名,数量\r\nS001,山田 太郎,1\r\nS002,鈴木 花子\r\nS003,佐藤 次郎,3\r\n';

export interface SmokeStep {
  readonly step: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail?: string;
}

async function zipEntries(path: string): Promise<Map<string, Buffer>> {
  const zip = await new Promise<yauzl.ZipFile>((res, rej) =>
    yauzl.open(path, { lazyEntries: true }, (e, z) => (e ? rej(e) : res(z))),
  );
  const out = new Map<string, Buffer>();
  await new Promise<void>((res, rej) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      zip.openReadStream(entry, async (err, stream) => {
        if (err) return rej(err);
        const parts: Buffer[] = [];
        for await (const c of stream) parts.push(c as Buffer);
        out.set(entry.fileName, Buffer.concat(parts));
        zip.readEntry();
      });
    });
    zip.on('end', () => res());
    zip.on('error', rej);
    zip.readEntry();
  });
  return out;
}

/**
 * Post-deploy check through the public API only: health without a token, 401 without a token, a job with
 * one bad record that must end PARTIAL, and its zip (manifest naming the job, errors.csv holding the record).
 */
export async function smoke(
  api: string,
  token: string,
  outDir: string,
  stallSeconds?: number,
): Promise<SmokeStep[]> {
  const base = api.replace(/\/$/, '');
  const steps: SmokeStep[] = [];
  const step = async (name: string, fn: () => Promise<string | undefined>) => {
    const t0 = Date.now();
    try {
      const detail = await fn();
      steps.push({ step: name, ok: true, ms: Date.now() - t0, ...(detail ? { detail } : {}) });
      return true;
    } catch (err) {
      steps.push({
        step: name,
        ok: false,
        ms: Date.now() - t0,
        detail: err instanceof Error ? err.message : String(err),
      });
      return false;
    }
  };
  const expect = (cond: boolean, what: string) => {
    if (!cond) throw new Error(what);
  };
  let zip: string | undefined;
  let jobToken = '';
  let site = '';
  const checks: [string, () => Promise<string | undefined>][] = [
    [
      'GET /health without a token answers 200',
      async () => {
        const r = await fetch(`${base}/health`);
        expect(r.status === 200, `HTTP ${r.status}`);
        return JSON.stringify(await r.json());
      },
    ],
    [
      'GET /jobs answers 401 without a token and 200 with it',
      async () => {
        const without = await fetch(`${base}/jobs`);
        expect(without.status === 401, `without a token: HTTP ${without.status}`);
        const withToken = await fetch(`${base}/jobs`, { headers: { authorization: `Bearer ${token}` } });
        expect(withToken.status === 200, `with the token: HTTP ${withToken.status}`);
        return undefined;
      },
    ],
    [
      'a job with one bad record ends PARTIAL',
      async () => {
        const file = join(await mkdtemp(join(tmpdir(), 'rowfleet-smoke-')), 'smoke.csv');
        await writeFile(file, SMOKE_CSV);
        const s = await runJob({
          apiUrl: base,
          apiToken: token,
          file,
          processor: 'json',
          outDir,
          directMaxBytes: 1 << 20,
          progress: true,
          stallSeconds,
        });
        jobToken = s.token;
        site = s.site;
        zip = s.zip;
        expect(
          s.state === 'PARTIAL',
          `state ${s.state}${s.error ? ` (${s.error.code}: ${s.error.message})` : ''}`,
        );
        expect(
          s.rows.total === 3 && s.rows.succeeded === 2 && s.rows.rejected === 1,
          `rows ${JSON.stringify(s.rows)}`,
        );
        return `${s.token} in ${s.seconds.toFixed(1)} s`;
      },
    ],
    [
      'the zip names the job and lists the bad record',
      async () => {
        expect(Boolean(zip), 'no zip downloaded');
        const entries = await zipEntries(zip!);
        const manifest = JSON.parse(entries.get('manifest.json')?.toString('utf8') ?? '{}') as {
          token?: string;
          site?: string;
        };
        expect(
          manifest.token === jobToken && manifest.site === site,
          `manifest names ${manifest.token}/${manifest.site}`,
        );
        const errors = entries.get('errors.csv')?.toString('utf8') ?? '';
        expect(/COLUMN_COUNT/.test(errors) && errors.includes('S002'), 'errors.csv lacks record 2');
        expect(
          entries.has('rows/1.json') && entries.has('rows/3.json') && !entries.has('rows/2.json'),
          'wrong row entries',
        );
        return zip;
      },
    ],
  ];
  // Each check needs the one before it; the first failure ends the run.
  for (const [name, fn] of checks) if (!(await step(name, fn))) break;
  return steps;
}
