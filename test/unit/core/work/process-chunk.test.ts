import { defaultMaxListeners, setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { splitPart } from '../../../../core/messages/part.ts';
import { ChunkStoppedError, processChunk, type ChunkRun } from '../../../../core/work/process-chunk.ts';
import { RecordError, type RowContext, type RowProcessor } from '../../../../core/processors/types.ts';
import { simulated } from '../../../../core/processors/simulate.ts';
import { RecordSlots } from '../../../../core/work/slots.ts';
import type { ClaimResult, EffectClaim } from '../../../../core/effects/claims.ts';
import { ZipWriter } from '../../../../core/messages/zip.ts';
import { readZip } from '../../../helpers/zip.ts';
import { RUNNING_JOB, runningChunk } from '../../../helpers/running-job.ts';

const job = RUNNING_JOB;
const TOKEN = job.token;

const chunkOf = (count: number, first = 1) => runningChunk(count, first);

/** The part's zip entries as [name, text], in the part's order. */
async function entriesOf(part: Buffer): Promise<[string, string][]> {
  const { entries } = splitPart(part);
  const parts: Buffer[] = [];
  const zip = new ZipWriter(async (b) => void parts.push(Buffer.from(b)));
  await zip.addPrebuilt(entries);
  await zip.finish();
  return (await readZip(Buffer.concat(parts))).map((f) => [f.name, f.data.toString('utf8')]);
}

/** An async processor whose records take `delay(n)` ms; it counts how many are in flight at once. */
function waiting(delay: (n: number) => number, extra: Partial<RowProcessor> = {}) {
  const seen = { inFlight: 0, peak: 0, calls: new Map<number, number>(), ctx: [] as RowContext[] };
  const processor: RowProcessor = {
    name: 'test',
    description: 'waits',
    async process(row, ctx) {
      seen.calls.set(row.n, (seen.calls.get(row.n) ?? 0) + 1);
      seen.ctx.push(ctx);
      seen.peak = Math.max(seen.peak, ++seen.inFlight);
      try {
        await sleep(delay(row.n), undefined, { signal: ctx.signal });
      } finally {
        seen.inFlight--;
      }
      return [{ name: `out/${row.n}.txt`, data: row.fields[1]! }];
    },
    ...extra,
  };
  return { processor, seen };
}

describe('Function: processChunk (concurrency)', () => {
  it('keeps the part in record order whatever order the records finish in, with at most the bound in flight', async () => {
    // Prepare: later records finish first (record n waits (40 - n) × 2 ms)
    const { msg, records } = chunkOf(40);
    const { processor, seen } = waiting((n) => (40 - n) * 2);

    // Act
    const done = await processChunk(job, msg, records, processor, { slots: new RecordSlots(8) });

    // Assess
    expect(done).toMatchObject({ succeeded: 40, failed: 0 });
    expect(seen.peak).toBe(8);
    expect((await entriesOf(done.part)).map(([name]) => name)).toEqual(records.map(([n]) => `out/${n}.txt`));
  });

  it('shares one bound between the chunks a worker holds', async () => {
    // Prepare
    const a = chunkOf(30, 1);
    const b = chunkOf(30, 31);
    const { processor, seen } = waiting(() => 5);
    const slots = new RecordSlots(6);

    // Act
    const [da, db] = await Promise.all([
      processChunk(job, a.msg, a.records, processor, { slots }),
      processChunk(job, { ...b.msg, chunk: 1 }, b.records, processor, { slots }),
    ]);

    // Assess
    expect(seen.peak).toBe(6);
    expect(slots.peak).toBe(6);
    expect(slots.inUse).toBe(0);
    expect([da.succeeded, db.succeeded]).toEqual([30, 30]);
  });

  it('lets the worker take its next chunk once the records left to start fit in the slots, not after the last has started', async () => {
    // Prepare: 50 records, 10 slots; each record waits 20 ms
    const { msg, records } = chunkOf(50);
    const { processor, seen } = waiting(() => 20);
    const calledAt: number[] = [];

    // Act
    const done = await processChunk(job, msg, records, processor, { slots: new RecordSlots(10) }, () =>
      calledAt.push(seen.calls.size),
    );

    // Assess: called once, when 40 had started — the next chunk is read while the last 10 start, so no slot
    // stands idle waiting for it
    expect(calledAt).toEqual([40]);
    expect(done.succeeded).toBe(50);
  });

  it('runs a synchronous processor in one turn: no promise, no microtask per record', async () => {
    // Prepare: a microtask queued before the chunk starts must not run before its last record
    const { msg, records } = chunkOf(500);
    let microtaskRan = false;
    const ranBeforeLast: boolean[] = [];
    const sync: RowProcessor = {
      name: 'sync',
      description: 'sync',
      process(row) {
        if (row.n === 500) ranBeforeLast.push(microtaskRan);
        return [{ name: `s/${row.n}`, data: 'x' }];
      },
    };
    queueMicrotask(() => (microtaskRan = true));

    // Act
    const done = await processChunk(job, msg, records, sync);

    // Assess
    expect(ranBeforeLast).toEqual([false]);
    expect(done.succeeded).toBe(500);
  });

  it('retries records that fail, in flight with the others, and fails only those that keep failing', async () => {
    // Prepare: odd records fail their first attempt, record 10 always, record 12 with a final RecordError
    const { msg, records } = chunkOf(20);
    const calls = new Map<number, number>();
    const processor: RowProcessor = {
      name: 'test',
      description: 'flaky',
      async process(row) {
        const c = (calls.get(row.n) ?? 0) + 1;
        calls.set(row.n, c);
        await sleep(2);
        if (row.n === 12) throw new RecordError('NOT_THIS', 'refused for good');
        if (row.n === 10 || (row.n % 2 === 1 && c === 1)) throw new Error(`boom ${row.n}`);
        return [{ name: `r/${row.n}`, data: String(c) }];
      },
    };

    // Act
    const done = await processChunk(job, msg, records, processor, { slots: new RecordSlots(5) });

    // Assess
    const { meta } = splitPart(done.part);
    expect(done).toMatchObject({ succeeded: 18, failed: 2 });
    expect(meta.failures.map((f) => [f.n, f.code, f.message])).toEqual([
      [10, 'PROCESSING_FAILED', 'boom 10'],
      [12, 'NOT_THIS', 'refused for good'],
    ]);
    expect(calls.get(10)).toBe(3);
    expect(calls.get(12)).toBe(1);
    expect(calls.get(3)).toBe(2);
    expect((await entriesOf(done.part)).map(([n]) => n)).toEqual(
      records.map(([n]) => `r/${n}`).filter((n) => n !== 'r/10' && n !== 'r/12'),
    );
  });

  it("fails an attempt that outlives the processor's timeout, aborting its signal, even if it never listens", async () => {
    // Prepare: record 2 never answers (and ignores its signal)
    const { msg, records } = chunkOf(3);
    const signals: AbortSignal[] = [];
    const processor: RowProcessor = {
      name: 'test',
      description: 'hangs',
      timeoutMs: 30,
      process(row, ctx) {
        if (row.n !== 2) return Promise.resolve([{ name: `t/${row.n}`, data: 'ok' }]);
        signals.push(ctx.signal);
        return new Promise(() => undefined);
      },
    };

    // Act
    const done = await processChunk(job, msg, records, processor);

    // Assess
    const { meta } = splitPart(done.part);
    expect(done).toMatchObject({ succeeded: 2, failed: 1 });
    expect(meta.failures[0]).toMatchObject({ n: 2, code: 'PROCESSING_FAILED' });
    expect(meta.failures[0]!.message).toContain('timed out after 30 ms');
    expect(signals).toHaveLength(3);
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('gives each record a stable idempotency key and its attempt number', async () => {
    // Prepare
    const { msg, records } = chunkOf(2, 41);
    const { processor, seen } = waiting(() => 1);

    // Act
    await processChunk(job, msg, records, processor);

    // Assess
    expect(seen.ctx.map((c) => [c.idempotencyKey, c.attempt, c.site, c.token])).toEqual([
      [`sakai#${TOKEN}#41`, 1, 'sakai', TOKEN],
      [`sakai#${TOKEN}#42`, 1, 'sakai', TOKEN],
    ]);
  });

  it('aborts the records in flight and gives the chunk back when the worker must stop', async () => {
    // Prepare
    const { msg, records } = chunkOf(50);
    const { processor, seen } = waiting(() => 10_000);
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('SIGTERM, no time left')), 30);

    // Act
    const t0 = Date.now();
    const r = await processChunk(job, msg, records, processor, {
      slots: new RecordSlots(10),
      signal: stop.signal,
    }).catch((err: unknown) => err);

    // Assess
    expect(r).toBeInstanceOf(ChunkStoppedError);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(seen.calls.size).toBe(10);
    expect(seen.ctx.every((c) => c.signal.aborted)).toBe(true);
  });

  it("listens to the worker's stop signal once per record in flight without Node's listener-leak warning", async () => {
    // Prepare: 60 records in flight at once, each listening to its signal (the job's stop signal behind it)
    const { msg, records } = chunkOf(60);
    const { processor, seen } = waiting(() => 20);
    const stop = new AbortController();
    // Node's default for a signal in a worker process (the test runner lifts it for its own signals)
    setMaxListeners(defaultMaxListeners, stop.signal);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);

    // Act
    try {
      await processChunk(job, msg, records, processor, { slots: new RecordSlots(60), signal: stop.signal });
      await sleep(10); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }

    // Assess
    expect(seen.peak).toBe(60);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('keeps the simulated delay and error rate working on any processor, concurrently', async () => {
    // Prepare: every first attempt fails (rate 1), each waits 20 ms
    const { msg, records } = chunkOf(30);
    const sync: RowProcessor = {
      name: 'sync',
      description: 'sync',
      process: (row) => [{ name: `s/${row.n}`, data: 'x' }],
    };
    const sim = simulated(sync, { delayMs: 20, errorRate: 1 });

    // Act
    const t0 = Date.now();
    const done = await processChunk(job, msg, records, sim, { slots: new RecordSlots(30) });

    // Assess: 30 records × 2 attempts × 20 ms one after the other would take 1.2 s
    expect(done).toMatchObject({ succeeded: 30, failed: 0 });
    expect(sim.costMs).toBe(20);
    expect(Date.now() - t0).toBeLessThan(600);
  });
});

/** Claims in memory, with the store's semantics (effects.ts), counting the effects a processor performs. */
class MemoryClaims {
  readonly items = new Map<number, EffectClaim>();
  async claim(_s: string, _t: string, n: number, claimId: string, by: string): Promise<ClaimResult> {
    const c = this.items.get(n);
    if (c && c.status !== 'RELEASED') return c.claimId === claimId ? { won: true } : { won: false, claim: c };
    this.items.set(n, { status: 'CLAIMED', claimId, claimedAt: new Date().toISOString(), claimedBy: by });
    return { won: true };
  }
  private settle(n: number, claimId: string, fields: Partial<EffectClaim>) {
    const c = this.items.get(n);
    if (c?.claimId === claimId && c.status === 'CLAIMED') this.items.set(n, { ...c, ...fields });
    return Promise.resolve();
  }
  done(
    _s: string,
    _t: string,
    n: number,
    claimId: string,
    outputs: readonly { name: string; data: string | Buffer }[],
  ) {
    return this.settle(n, claimId, { status: 'DONE', outputs });
  }
  failed(_s: string, _t: string, n: number, claimId: string, code: string, message: string) {
    return this.settle(n, claimId, { status: 'FAILED', code, message });
  }
  release(_s: string, _t: string, n: number, claimId: string) {
    return this.settle(n, claimId, { status: 'RELEASED' });
  }
}

describe('Function: processChunk (side effects)', () => {
  /** A processor with side effects: record 3 is refused (nothing done), record 5 gets no answer. */
  function sender() {
    const effects = new Map<number, number>();
    const processor: RowProcessor = {
      name: 'sender',
      description: 'sends',
      sideEffects: true,
      async process(row) {
        await sleep(1);
        if (row.n === 3) throw new RecordError('REFUSED', 'not sent');
        effects.set(row.n, (effects.get(row.n) ?? 0) + 1);
        if (row.n === 5) throw new Error('socket hang up');
        return [{ name: `sent/${row.n}`, data: `id-${row.n}` }];
      },
    };
    return { processor, effects };
  }

  it('claims each record, replays done records on a redelivery and never repeats an effect', async () => {
    // Prepare
    const { msg, records } = chunkOf(6);
    const { processor, effects } = sender();
    const claims = new MemoryClaims();
    const run: ChunkRun = { claims, slots: new RecordSlots(4), claimedBy: 'w1' };

    // Act: the chunk delivered twice
    const first = await processChunk(job, msg, records, processor, run);
    const second = await processChunk(job, msg, records, processor, { ...run, claimedBy: 'w2' });

    // Assess: one effect per record; both parts alike; 5 in doubt, 3 refused with its own code
    expect([...effects.values()]).toEqual([1, 1, 1, 1, 1]);
    for (const done of [first, second]) {
      const { meta } = splitPart(done.part);
      expect(done).toMatchObject({ succeeded: 4, failed: 2 });
      expect(meta.failures.map((f) => [f.n, f.code])).toEqual([
        [3, 'REFUSED'],
        [5, 'IN_DOUBT'],
      ]);
      expect((await entriesOf(done.part)).map(([n, d]) => `${n}=${d}`)).toEqual([
        'sent/1=id-1',
        'sent/2=id-2',
        'sent/4=id-4',
        'sent/6=id-6',
      ]);
    }
    expect(claims.items.get(5)?.status).toBe('CLAIMED');
    expect(claims.items.get(3)).toMatchObject({ status: 'FAILED', code: 'REFUSED' });
  });

  it('reports a record claimed by a worker that died (no outcome) as IN_DOUBT and never runs it', async () => {
    // Prepare: record 2 was claimed by a worker killed before its answer
    const { msg, records } = chunkOf(2);
    const { processor, effects } = sender();
    const claims = new MemoryClaims();
    await claims.claim('sakai', TOKEN, 2, 'dead-claim', 'host/4242');

    // Act
    const done = await processChunk(job, msg, records, processor, { claims });

    // Assess
    const { meta } = splitPart(done.part);
    expect(effects.has(2)).toBe(false);
    expect(meta.failures).toHaveLength(1);
    expect(meta.failures[0]).toMatchObject({ n: 2, code: 'IN_DOUBT' });
    expect(meta.failures[0]!.message).toContain('host/4242');
    expect(done).toMatchObject({ succeeded: 1, failed: 1 });
  });

  it('retries a record whose RecordError is retryable (nothing done) without claiming it twice', async () => {
    // Prepare
    const { msg, records } = chunkOf(1);
    let calls = 0;
    const claims = new MemoryClaims();
    const processor: RowProcessor = {
      name: 'busy',
      description: 'busy once',
      sideEffects: true,
      async process(row) {
        if (++calls === 1) throw new RecordError('BUSY', 'try later', { retryable: true });
        return [{ name: `b/${row.n}`, data: 'ok' }];
      },
    };

    // Act
    const done = await processChunk(job, msg, records, processor, { claims });

    // Assess
    expect(calls).toBe(2);
    expect(done.succeeded).toBe(1);
    expect(claims.items.get(1)?.status).toBe('DONE');
  });

  it('refuses to run a processor with side effects without claims, or a rate-limited one without its limiter', async () => {
    // Prepare
    const { msg, records } = chunkOf(1);
    const effectful: RowProcessor = { name: 'e', description: 'e', sideEffects: true, process: () => [] };
    const limited: RowProcessor = {
      name: 'l',
      description: 'l',
      rateLimit: { perSecond: 5 },
      process: () => [],
    };

    // Act, Assess
    await expect(processChunk(job, msg, records, effectful)).rejects.toThrow('runs only with claims');
    await expect(processChunk(job, msg, records, limited)).rejects.toThrow('runs only with its limiter');
  });
});
