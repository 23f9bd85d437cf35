/**
 * At most once (issue 8): records of a processor with side effects are claimed in DynamoDB (dynalite here)
 * before their effect and settled after it. Duplicate delivery, concurrent delivery, a crash between the claim
 * and the outcome, and the give-up of a chunk never repeat an effect or count a record twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { dynamoClient } from '../../../../core/aws/clients.ts';
import type { ChunkMessage } from '../../../../core/messages/chunk.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import { keys, newJobToken } from '../../../../core/jobs/keys.ts';
import { splitPart } from '../../../../core/messages/part.ts';
import type { PipelineDeps } from '../../../../core/deps.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { EffectClaims, KEPT_OUTPUT_BYTES } from '../../../../core/effects/claims.ts';
import { failedChunk } from '../../../../core/work/chunk-part.ts';
import { processChunk } from '../../../../core/work/process-chunk.ts';
import { RecordError, type RowProcessor } from '../../../../core/processors/types.ts';
import { RecordSlots } from '../../../../core/work/slots.ts';
import { runWorker } from '../../../../core/work/worker.ts';
import { testDeps, useTestAws } from '../../../helpers/aws.ts';
import { InjectedFault, pastLastAttempt } from '../../../helpers/faults.ts';
import { parseErrorsCsv } from '../../../helpers/jepsen.ts';
import { readZipText } from '../../../helpers/zip.ts';

const aws = useTestAws();

function jobAndChunk(count: number, site = 'sakai') {
  const token = newJobToken();
  const job: Job = {
    site,
    token,
    state: 'RUNNING',
    processor: 'sender',
    sourceKey: `uploads/${site}/${token}/source.csv`,
    upload: 'direct',
    header: ['id', 'email'],
    chunksDone: 0,
    succeeded: 0,
    failed: 0,
    receivedAt: '2026-01-02T03:04:05.000Z',
  };
  const msg: ChunkMessage = {
    v: 2,
    site,
    token,
    chunk: 0,
    key: job.sourceKey,
    start: 0,
    end: 1,
    n: 1,
    line: 2,
    records: count,
  };
  const records = Array.from(
    { length: count },
    (_, i) => [i + 1, i + 2, [String(i + 1), `r${i + 1}@example.com`]] as [number, number, string[]],
  );
  return { job, msg, records };
}

/** A processor that "sends": each effect is counted; record `refuse` is refused (nothing sent). */
function sender(o: { delayMs?: number; refuse?: number } = {}) {
  const effects = new Map<number, number>();
  const processor: RowProcessor = {
    name: 'sender',
    description: 'sends',
    sideEffects: true,
    async process(row) {
      await sleep(o.delayMs ?? 1);
      if (row.n === o.refuse) throw new RecordError('REFUSED', 'not sent');
      effects.set(row.n, (effects.get(row.n) ?? 0) + 1);
      return [{ name: `sent/${row.n}.json`, data: JSON.stringify({ id: `m-${row.n}` }) }];
    },
  };
  return { processor, effects };
}

const codes = (part: Buffer) => splitPart(part).meta.failures.map((f) => [f.n, f.code] as const);

describe('Class: EffectClaims', () => {
  it("lets exactly one of many concurrent claimers win, in the site's partition, with a TTL", async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();

    // Act
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => claims.claim('kawasaki', token, 5, `claim-${i}`, `w${i}`)),
    );
    const item = await dynamoClient().send(
      new GetCommand({
        TableName: aws.table,
        Key: { pk: 'SITE#kawasaki', sk: `EFFECT#kawasaki#${token}#5` },
      }),
    );

    // Assess
    const winners = results.filter((r) => r.won);
    expect(winners).toHaveLength(1);
    const winnerId = item.Item!.claimId as string;
    for (const r of results) if (!r.won) expect(r.claim?.claimId).toBe(winnerId);
    expect(item.Item!.status).toBe('CLAIMED');
    const days = (Number(item.Item!.expiresAt) - Date.now() / 1000) / 86_400;
    expect(days).toBeGreaterThan(13.9);
    expect(days).toBeLessThan(14.1);
  });

  it('counts a claim whose answer was lost as won by the same claimer, and a released one as free', async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();
    await claims.claim('sakai', token, 1, 'mine', 'w1');

    // Act
    const again = await claims.claim('sakai', token, 1, 'mine', 'w1');
    const other = await claims.claim('sakai', token, 1, 'theirs', 'w2');
    await claims.release('sakai', token, 1, 'mine');
    const afterRelease = await claims.claim('sakai', token, 1, 'theirs', 'w2');

    // Assess
    expect(again.won).toBe(true);
    expect(other.won).toBe(false);
    expect(afterRelease.won).toBe(true);
    expect((await claims.get('sakai', token, 1))?.claimedBy).toBe('w2');
  });
});

describe('Class: EffectClaims (outcomes)', () => {
  it("records an outcome only on the caller's own claim: a late answer of a released claim changes nothing", async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();
    await claims.claim('sakai', token, 1, 'old', 'w1');
    await claims.release('sakai', token, 1, 'old');
    await claims.claim('sakai', token, 1, 'new', 'w2');

    // Act
    await claims.done('sakai', token, 1, 'old', [{ name: 'sent/1.json', data: 'old' }]);
    await claims.failed('sakai', token, 1, 'old', 'REFUSED', 'late');
    const meanwhile = await claims.get('sakai', token, 1);
    await claims.done('sakai', token, 1, 'new', [{ name: 'sent/1.json', data: 'new' }]);
    await claims.failed('sakai', token, 1, 'new', 'REFUSED', 'after the effect');
    await claims.release('sakai', token, 1, 'new');
    const settled = await claims.get('sakai', token, 1);

    // Assess
    expect(meanwhile).toMatchObject({ status: 'CLAIMED', claimId: 'new', claimedBy: 'w2' });
    expect(meanwhile?.outputs).toBeUndefined();
    expect(settled).toMatchObject({
      status: 'DONE',
      claimId: 'new',
      outputsKept: true,
      outputs: [{ name: 'sent/1.json', data: 'new' }],
    });
    expect(settled?.code).toBeUndefined();
    expect((await claims.claim('sakai', token, 1, 'third', 'w3')).won).toBe(false);
  });

  it('answers a claim already settled as lost even to its own claimer, and counts its requests', async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();
    const binary = Buffer.from([0, 255, 1, 254]);

    // Act
    const first = await claims.claim('sakai', token, 1, 'c1', 'w');
    const statsAfterWin = { ...claims.stats };
    await claims.done('sakai', token, 1, 'c1', [{ name: 'b.bin', data: binary }]);
    const again = await claims.claim('sakai', token, 1, 'c1', 'w');

    // Assess
    expect(first).toEqual({ won: true });
    expect(statsAfterWin).toEqual({ writes: 1, reads: 0 });
    expect(again.won).toBe(false);
    expect(again).toMatchObject({ claim: { status: 'DONE', claimId: 'c1' } });
    const replayed = again.won ? undefined : again.claim?.outputs?.[0]?.data;
    expect(Buffer.isBuffer(replayed) && binary.equals(replayed)).toBe(true);
    expect(claims.stats).toEqual({ writes: 3, reads: 1 });
  });

  it('keeps the outputs of a done record up to 64 KB, and only says so above', async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();
    const fits = 'x'.repeat(64 * 1024 - 'a'.length);
    const over = 'x'.repeat(64 * 1024);
    await claims.claim('sakai', token, 1, 'c1', 'w');
    await claims.claim('sakai', token, 2, 'c2', 'w');

    // Act
    await claims.done('sakai', token, 1, 'c1', [{ name: 'a', data: fits }]);
    await claims.done('sakai', token, 2, 'c2', [{ name: 'a', data: over }]);
    const kept = await claims.get('sakai', token, 1);
    const notKept = await claims.get('sakai', token, 2);

    // Assess
    expect(kept).toMatchObject({ status: 'DONE', outputsKept: true, outputs: [{ name: 'a', data: fits }] });
    expect(notKept).toMatchObject({ status: 'DONE', outputsKept: false });
    expect(notKept?.outputs).toBeUndefined();
  });

  it("keeps a FAILED record's code and message, and frees a released record for the next claimer", async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();
    await claims.claim('sakai', token, 1, 'c1', 'w');
    await claims.claim('sakai', token, 2, 'c2', 'w');

    // Act
    await claims.failed('sakai', token, 1, 'c1', 'REFUSED', 'not sent');
    await claims.release('sakai', token, 2, 'c2');
    const failed = await claims.get('sakai', token, 1);
    const retried = await claims.claim('sakai', token, 1, 'c3', 'w');
    const released = await claims.claim('sakai', token, 2, 'c4', 'w');

    // Assess
    expect(failed).toMatchObject({ status: 'FAILED', code: 'REFUSED', message: 'not sent' });
    expect(retried).toEqual({ won: false, claim: failed });
    expect(released).toEqual({ won: true });
    expect(await claims.get('sakai', token, 2)).toMatchObject({ status: 'CLAIMED', claimId: 'c4' });
  });

  it("keeps each site's claims apart: the same job token and record number are another record elsewhere", async () => {
    // Prepare
    const claims = new EffectClaims(aws.table, 14);
    const token = newJobToken();
    await claims.claim('sakai', token, 1, 'c1', 'w');
    await claims.done('sakai', token, 1, 'c1', [{ name: 'a', data: 'sakai' }]);

    // Act
    const other = await claims.claim('kawasaki', token, 1, 'c2', 'w');
    const otherRecord = await claims.claim('sakai', token, 2, 'c3', 'w');

    // Assess
    expect(other).toEqual({ won: true });
    expect(otherRecord).toEqual({ won: true });
    expect(await claims.get('kawasaki', token, 1)).toMatchObject({ status: 'CLAIMED', claimId: 'c2' });
    expect(await claims.get('sakai', token, 1)).toMatchObject({ status: 'DONE', claimId: 'c1' });
  });
});

describe('Scenario: side effects at most once', () => {
  it('duplicate delivery: the second delivery replays every record from its outcome, sending nothing', async () => {
    // Prepare
    const { job, msg, records } = jobAndChunk(40);
    const { processor, effects } = sender({ refuse: 7 });
    const claims = new EffectClaims(aws.table, 14);

    // Act
    const first = await processChunk(job, msg, records, processor, { claims, slots: new RecordSlots(8) });
    const second = await processChunk(job, msg, records, processor, { claims, slots: new RecordSlots(8) });

    // Assess
    expect([...effects.values()].every((c) => c === 1)).toBe(true);
    expect(effects.size).toBe(39);
    expect(second.part.equals(first.part)).toBe(true);
    expect(codes(second.part)).toEqual([[7, 'REFUSED']]);
    expect(second).toMatchObject({ succeeded: 39, failed: 1 });
  });

  it('concurrent delivery: two workers at once send each record once; each part accounts for every record', async () => {
    // Prepare
    const { job, msg, records } = jobAndChunk(60);
    const { processor, effects } = sender({ delayMs: 5 });
    const claims = new EffectClaims(aws.table, 14);

    // Act
    const [a, b] = await Promise.all([
      processChunk(job, msg, records, processor, { claims, slots: new RecordSlots(10), claimedBy: 'wa' }),
      processChunk(job, msg, records, processor, { claims, slots: new RecordSlots(10), claimedBy: 'wb' }),
    ]);

    // Assess: one effect per record in all; a record the other worker had in hand is IN_DOUBT, never twice
    expect(effects.size).toBe(60);
    expect([...effects.values()].every((c) => c === 1)).toBe(true);
    for (const done of [a, b]) {
      expect(done.succeeded + done.failed).toBe(60);
      expect(codes(done.part).every(([, code]) => code === 'IN_DOUBT')).toBe(true);
    }
    const doneByBoth = new Set([
      ...records.map(([n]) => n).filter((n) => !codes(a.part).some(([m]) => m === n)),
      ...records.map(([n]) => n).filter((n) => !codes(b.part).some(([m]) => m === n)),
    ]);
    expect(doneByBoth.size).toBe(60);
  });

  it('a crash between claim and outcome: the record ends IN_DOUBT on redelivery and is not sent again', async () => {
    // Prepare: the outcome write of record 3 fails after its effect (the worker "dies" there)
    const { job, msg, records } = jobAndChunk(5);
    const { processor, effects } = sender();
    const claims = new EffectClaims(aws.table, 14);
    const crashing = Object.assign(Object.create(claims) as EffectClaims, {
      done: (site: string, token: string, n: number, id: string, out: never[]) =>
        n === 3
          ? Promise.reject(new InjectedFault('DynamoDB unreachable'))
          : claims.done(site, token, n, id, out),
    });

    // Act
    const crashed = await processChunk(job, msg, records, processor, { claims: crashing }).catch((e) => e);
    const redelivered = await processChunk(job, msg, records, processor, { claims });

    // Assess
    expect(crashed).toBeInstanceOf(InjectedFault);
    expect(effects.get(3)).toBe(1);
    expect([...effects.values()].every((c) => c === 1)).toBe(true);
    expect(codes(redelivered.part)).toEqual([[3, 'IN_DOUBT']]);
    expect(redelivered).toMatchObject({ succeeded: 4, failed: 1 });
  });

  it('a given-up chunk keeps what its claims know: done records replayed, claimed ones IN_DOUBT, the rest CHUNK_FAILED', async () => {
    // Prepare: records 1-4 of 8 went through (3 refused); record 5 was claimed by a worker that died
    const { job, msg, records } = jobAndChunk(8);
    const { processor } = sender({ refuse: 3 });
    const claims = new EffectClaims(aws.table, 14);
    await processChunk(job, { ...msg, records: 4 }, records.slice(0, 4), processor, { claims });
    await claims.claim(job.site, job.token, 5, 'dead', 'host/99');
    const unreadable = { objects: { bytes: () => Promise.reject(new InjectedFault('range unreadable')) } };

    // Act
    const given = await failedChunk(
      unreadable as unknown as PipelineDeps,
      job,
      msg,
      'gave up',
      'CHUNK_FAILED',
      claims,
    );

    // Assess
    expect(given).toMatchObject({ succeeded: 3, failed: 5 });
    expect(codes(given.part)).toEqual([
      [3, 'REFUSED'],
      [5, 'IN_DOUBT'],
      [6, 'CHUNK_FAILED'],
      [7, 'CHUNK_FAILED'],
      [8, 'CHUNK_FAILED'],
    ]);
    expect(splitPart(given.part).meta.entries).toBe(3);
  });

  it('a worker giving up a chunk (mail) reports each record by its claim; only the untouched are CHUNK_FAILED, for a retry', async () => {
    // Prepare: a mail job of 10 records, one chunk; records 1-5 claimed by a worker that then died mid-chunk:
    // 1 done, 2 done with outputs too large to keep, 3 refused, 4 claimed (no outcome), 5 released
    const deps = testDeps(aws);
    const csv = [
      'id,氏名,品目,数量,受注日,email',
      ...Array.from({ length: 10 }, (_, i) => `${i + 1},客${i + 1},鋼板,1,2026-11-20,g${i + 1}@example.com`),
    ];
    const view = await startDirectJob(deps, 'marifu', Buffer.from(csv.join('\n')), { processor: 'mail' });
    const t = view.token;
    const claims = new EffectClaims(aws.table, 14);
    for (const n of [1, 2, 3, 4, 5]) await claims.claim('marifu', t, n, `c${n}`, 'host/7');
    await claims.done('marifu', t, 1, 'c1', [{ name: 'mail/1.json', data: '{"messageId":"m-1"}' }]);
    await claims.done('marifu', t, 2, 'c2', [{ name: 'mail/2.json', data: 'x'.repeat(KEPT_OUTPUT_BYTES) }]);
    await claims.failed('marifu', t, 3, 'c3', 'MAIL_INVALID_ADDRESS', 'not an address; not sent');
    await claims.release('marifu', t, 5, 'c5');
    // Every receive of the chunk is past its attempts: the worker gives it up
    const lastAttempt = pastLastAttempt(deps);

    // Act
    const worker = await runWorker(lastAttempt, { site: 'marifu', token: t, waitSeconds: 0, idlePolls: 2 });
    const done = await finalizeJob(deps, 'marifu', t);
    const job = (await deps.jobs.get('marifu', t))!;
    const zip = await readZipText(await deps.objects.bytes(job.resultKey!));
    const errors = parseErrorsCsv(zip.get('errors.csv')!);
    const retried = (await deps.objects.bytes(keys.failed('marifu', t))).toString('utf8');
    const store = (await (await fetch(`${aws.emulators.endpoints.ses}/store`)).json()) as {
      emails: { headers?: { name: string; value: string }[] }[];
    };

    // Assess: nothing sent by the give-up; each record in one outcome; a retry is offered the untouched alone
    expect(worker.chunks).toBe(1);
    expect(JSON.stringify(store)).not.toContain(t);
    expect(done).toMatchObject({
      state: 'PARTIAL',
      counts: { total: 10, succeeded: 1, failed: 9, rejected: 0 },
    });
    expect([...zip.keys()].filter((k) => k.startsWith('mail/'))).toEqual(['mail/1.json']);
    expect(zip.get('mail/1.json')).toBe('{"messageId":"m-1"}');
    expect(errors.map((e) => [e.n, e.code])).toEqual([
      [2, 'DONE_RESULT_NOT_KEPT'],
      [3, 'MAIL_INVALID_ADDRESS'],
      [4, 'IN_DOUBT'],
      ...[5, 6, 7, 8, 9, 10].map((n) => [n, 'CHUNK_FAILED']),
    ]);
    expect(
      retried
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { n: number }).n),
    ).toEqual([5, 6, 7, 8, 9, 10]);
  });
});
