/**
 * The embedded SES is loaded at its first request, not at the emulators' start (issue 22, start-up): aws-ses-v2-local
 * (express, nodemailer) was a third of the CPU every command that starts the runtime waited for. Its port answers
 * from the start, and the mails of earlier runs are there at the first request.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const SES = fileURLToPath(new URL('../../../../local/emulators/ses.ts', import.meta.url));
const GATE = fileURLToPath(new URL('../../../../local/emulator-gate.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rowfleet-ses-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * In a process of its own (a module loaded by another test of this worker would not count): starts the SES on a
 * state directory holding one earlier mail, then asks its store with the viewer key.
 */
function run(): { loadedAtStart: boolean; status: number; subjects: string[]; loadedAfter: boolean } {
  const earlier = { messageId: 'earlier-1', subject: 'from an earlier run', atMs: 1 };
  writeFileSync(join(dir, 'ses-mails.ndjson'), JSON.stringify(earlier) + '\n');
  const script = join(dir, 'probe.mts');
  writeFileSync(
    script,
    `import { createRequire } from 'node:module';
     import { startSes } from ${JSON.stringify(SES)};
     import { viewerKey } from ${JSON.stringify(GATE)};
     const require = createRequire(import.meta.url);
     const loaded = () => Object.keys(require.cache).some((k) => k.includes('aws-ses-v2-local'));
     const credentials = { accessKeyId: 'ROWFLEETLOCALTEST', secretAccessKey: 'the-runtime-secret' };
     const ses = await startSes(${JSON.stringify(dir)}, credentials);
     const loadedAtStart = loaded();
     const port = ses.server.address().port;
     const res = await fetch('http://127.0.0.1:' + port + '/store?key=' + viewerKey(credentials));
     const body = await res.json();
     console.log(JSON.stringify({ loadedAtStart, status: res.status, subjects: body.emails.map((e) => e.subject), loadedAfter: loaded() }));
     await ses.stop();`,
  );
  const out = execFileSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as ReturnType<typeof run>;
}

describe('Emulator: SES (local/emulators/ses.ts)', () => {
  it('loads aws-ses-v2-local at the first request, with the mails of earlier runs', () => {
    const r = run();
    expect(r.loadedAtStart).toBe(false);
    expect(r.status).toBe(200);
    expect(r.subjects).toEqual(['from an earlier run']);
    expect(r.loadedAfter).toBe(true);
  });
});
