/**
 * The local runtime as a boundary and as something that stays up (issue 19, points 9 and 10): its state directory
 * is this user's only (0700, files 0600), its emulators refuse any other local process (unsigned, or signed with
 * credentials of its own), `rowfleet dev` notices its runtime died and starts it again, and `rowfleet run --json`
 * follows its job through a runtime restart to its end and names its token.
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { localResourceNames } from '../../config/names.ts';
import type { JobView } from '../../core/intake/operations.ts';
import { readOwner } from '../../local/ownership.ts';
import { writeSampleCsv } from '../../cli/gen-data.ts';
import { rowfleet, rowfleetStarter, runArgs } from '../helpers/cli.ts';
import { workerPids } from '../helpers/tasks.ts';
import { tempDirs } from '../helpers/temp.ts';
import { until } from '../helpers/wait.ts';

const newDir = tempDirs();
const start = rowfleetStarter();

/** kill -9 of every process of the runtime at once: the runtime, its emulator host, its workers. */
function killRuntime(stateDir: string): void {
  const owner = readOwner(stateDir)!;
  for (const pid of [owner.pid, ...(owner.emulatorPid ? [owner.emulatorPid] : []), ...workerPids(stateDir)]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function siteToken(stateDir: string, site = 'sakai'): Promise<string> {
  return (JSON.parse(await readFile(join(stateDir, 'api-tokens.json'), 'utf8')) as Record<string, string>)[
    site
  ]!;
}

/** Every path under `dir` whose mode lets anyone but its owner in (group or other bits). */
function openToOthers(dir: string): string[] {
  const found: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (st.mode & 0o077) found.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
  };
  walk(dir);
  return found;
}

describe('Scenario: the state directory and the emulators of a running runtime', { timeout: 240_000 }, () => {
  it('keeps the state dir 0700 and its files 0600, and refuses every other process; dev starts a killed runtime again', async () => {
    // Prepare: a state dir that exists world-readable, with the owner's umask letting others read
    const dir = await newDir('rowfleet-boundary-');
    const stateDir = join(dir, 'state');
    await mkdir(stateDir, { mode: 0o755 });
    await chmod(stateDir, 0o755);
    const file = join(dir, 'jobs.csv');
    await writeSampleCsv(file, 50);
    const dev = start(['dev', '--send-now', '--state-dir', stateDir]);
    await until('dev to be ready', 90_000, () => (/Ready\./.test(dev.out.stdout) ? true : undefined));
    const ran = await rowfleet(runArgs(file, { processor: 'json', stateDir, out: join(dir, 'out') }));
    expect(ran.code, ran.stderr).toBe(0);
    const owner = readOwner(stateDir)!;
    const names = localResourceNames(owner.stage);

    // Act, Assess: what another process of the machine gets from the runtime's emulators
    const foreign = { accessKeyId: 'local', secretAccessKey: 'local' };
    const region = owner.env.AWS_REGION ?? 'ap-northeast-1';
    const list = await fetch(`${owner.endpoints.s3sqs}/${names.bucket}?list-type=2`);
    expect(list.status).toBe(403);
    const job = JSON.parse(ran.stdout.trimEnd().split('\n').pop()!) as { token: string };
    const objects = await new S3Client({
      endpoint: owner.endpoints.s3sqs,
      region,
      forcePathStyle: true,
      credentials: {
        accessKeyId: owner.env.AWS_ACCESS_KEY_ID!,
        secretAccessKey: owner.env.AWS_SECRET_ACCESS_KEY!,
      },
    }).send(new ListObjectsV2Command({ Bucket: names.bucket }));
    const zipKey = objects
      .Contents!.map((o) => o.Key!)
      .find((k) => k.includes(job.token) && k.endsWith('.zip'))!;
    expect(zipKey).toBeTruthy();
    expect((await fetch(`${owner.endpoints.s3sqs}/${names.bucket}/${zipKey}`)).status).toBe(403);
    const forged = new DynamoDBClient({
      endpoint: owner.endpoints.dynamodb,
      region,
      credentials: foreign,
      maxAttempts: 1,
    }).send(
      new PutItemCommand({
        TableName: names.table,
        Item: { pk: { S: 'APITOKEN#forged' }, sk: { S: 'APITOKEN' }, site: { S: 'sakai' } },
      }),
    );
    await expect(forged).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect((await fetch(`${owner.endpoints.ses}/store`)).status).toBe(403);
    const viewer = /mail viewer: (\S+)/.exec(dev.out.stdout)![1]!;
    expect((await fetch(viewer)).status).toBe(200);

    // Assess: nothing in the state dir is open to others (owner record, credentials, tokens, logs, emulator data)
    for (const f of [
      'runtime.json',
      'credentials.json',
      'api-tokens.json',
      'logs/runtime.log',
      'emulators/dynamodb',
    ])
      expect(existsSync(join(stateDir, f)), f).toBe(true);
    expect(lstatSync(stateDir).mode & 0o777).toBe(0o700);
    expect(openToOthers(stateDir)).toEqual([]);

    // Act: the runtime is killed under dev
    const before = readOwner(stateDir)!;
    killRuntime(stateDir);

    // Assess: dev starts it again and says where it is; its API answers; Ctrl-C still stops dev cleanly
    await until('dev to say Ready again', 120_000, () =>
      (dev.out.stdout.match(/Ready\./g) ?? []).length >= 2 ? true : undefined,
    );
    expect(dev.out.stdout).toMatch(/stopped; starting it again/);
    const after = readOwner(stateDir)!;
    expect(after.instance).not.toBe(before.instance);
    expect(dev.out.stdout).toContain(`API:         ${after.apiUrl}`);
    const jobs = await fetch(`${after.apiUrl}/jobs`, {
      headers: { authorization: `Bearer ${await siteToken(stateDir)}` },
    });
    expect(jobs.status).toBe(200);
    dev.child.kill('SIGINT');
    expect(await dev.exited, dev.out.stderr).toBe(0);
    expect(openToOthers(stateDir)).toEqual([]);
  });
});

describe('Scenario: rowfleet run --json while its runtime is killed', { timeout: 300_000 }, () => {
  it('follows the job through the restart to its end and prints its token and figures', async () => {
    // Prepare: a job slow enough to be seen running when the runtime is killed: one record at a time per worker,
    // 2 ms each, about 4 s of work (many records in flight finished it between two polls of the test)
    const dir = await newDir('rowfleet-run-restart-');
    const stateDir = join(dir, 'state');
    const file = join(dir, 'jobs.csv');
    const records = 4000;
    await writeSampleCsv(file, records);
    const run = start(
      runArgs(file, {
        processor: 'json',
        workers: 2,
        concurrency: 1,
        delayMs: 2,
        stateDir,
        out: join(dir, 'out'),
      }),
    );
    const running = await until('the job to run', 120_000, async () => {
      const owner = readOwner(stateDir);
      if (!owner || !existsSync(join(stateDir, 'api-tokens.json'))) return undefined;
      const res = await fetch(`${owner.apiUrl}/jobs`, {
        headers: { authorization: `Bearer ${await siteToken(stateDir)}` },
      }).catch(() => undefined);
      const body = (await res?.json().catch(() => undefined)) as JobView[] | { jobs: JobView[] } | undefined;
      const v = body ? (Array.isArray(body) ? body : body.jobs)[0] : undefined;
      return v?.state === 'RUNNING' && v.progress.done > 0 ? v : undefined;
    }).catch((err: unknown) => {
      // What the command said, so a run that never got its job in tells why.
      throw new Error(`${(err as Error).message}; rowfleet run said: ${run.out.stderr.slice(-2000)}`);
    });

    // Act
    killRuntime(stateDir);
    const code = await run.exited;

    // Assess
    const summary = JSON.parse(run.out.stdout.trimEnd().split('\n').pop()!) as {
      token: string;
      state: string;
      rows: { total: number; succeeded: number };
      zip?: string;
    };
    expect(summary.token, run.out.stderr).toBe(running.token);
    expect(summary.state).toBe('SUCCEEDED');
    expect(summary.rows).toMatchObject({ total: records, succeeded: records });
    expect(summary.zip && existsSync(summary.zip)).toBe(true);
    expect(code).toBe(0);
  });
});
