/**
 * The simulated day's loop: discrete events on a simulated clock. Simulated here: the launcher (a task holds its
 * place from its launch and starts working START_DELAY_S later, as Fargate tasks do), the worker (takes up to
 * CHUNKS_PER_RECEIVE chunks per receive, needs `recordMs` per record, an empty long poll lasts LONG_POLL_S; it
 * leaves after IDLE_EXIT_S idle, or when its policy says so), the split (1 s + SPLIT_RECORDS_PER_S; chunks sized
 * as core/split/split.ts sizes them), the finalize (stops the job's workers when the last chunk is counted).
 */
import { jobKey } from '../../core/budget/policy.ts';
import { chunkTargetRecords } from '../../core/chunking/size.ts';
import { workerCount } from '../../core/split/worker-count.ts';
import { Events } from './events.ts';
import { largeJobRunning, Metrics, type Result } from './metrics.ts';
import {
  CHUNKS_PER_RECEIVE,
  IDLE_EXIT_S,
  LONG_POLL_S,
  REAPER_S,
  SMALL,
  SPLIT_RECORDS_PER_S,
  START_DELAY_S,
  type PolicyName,
  type SimJob,
  type SimParams,
  type SimWorker,
  type World,
} from './model.ts';
import { POLICIES, type Policy } from './policies.ts';
import { rng, type Upload } from './workload.ts';

/** One day under one policy. */
class Day implements World {
  readonly budget: number;
  readonly jobs: readonly SimJob[];
  readonly active = new Set<SimJob>();
  now = 0;
  alive = 0;
  private busy = 0;
  private launchFailures = 0;
  private peakRequested = 0;
  private unfinished: number;
  private readonly aliveBySite = new Map<string, number>();
  private readonly events = new Events();
  private readonly r: () => number;
  private readonly metrics: Metrics;
  private readonly policy: Policy;

  constructor(
    policyName: PolicyName,
    uploads: readonly Upload[],
    private readonly p: SimParams,
  ) {
    this.budget = p.budget;
    this.r = rng(p.seed * 7919 + 1);
    this.metrics = new Metrics(p.budget);
    this.unfinished = uploads.length;
    this.jobs = uploads.map((u) => {
      const workers = workerCount(u.records, p.limits);
      const chunkRecords = Math.min(p.chunkMaxRecords, chunkTargetRecords(u.records, workers));
      return {
        u,
        key: jobKey(u.site, u.token),
        ready: u.arrival + 1 + u.records / SPLIT_RECORDS_PER_S,
        workers,
        chunkRecords,
        totalChunks: Math.ceil(u.records / chunkRecords),
        handed: 0,
        done: 0,
        duringLarge: false,
        live: new Set(),
      };
    });
    this.policy = POLICIES[policyName](this);
  }

  run(): Result {
    const { events, policy } = this;
    for (const job of this.jobs) events.push({ t: job.ready, kind: 'ready', job });
    events.push({ t: REAPER_S, kind: 'reaper' });
    for (let ev = events.pop(); ev && this.unfinished > 0; ev = events.pop()) {
      this.metrics.advance(ev.t, this.active, this.alive, this.busy, this.aliveBySite);
      this.now = ev.t;
      switch (ev.kind) {
        case 'ready': {
          const job = ev.job;
          this.active.add(job);
          if (job.u.records < SMALL) job.duringLarge = largeJobRunning(this.active);
          policy.ready(job);
          break;
        }
        case 'start': {
          if (!ev.w.alive) break;
          ev.w.job.firstRunningAt ??= this.now;
          this.receive(ev.w);
          break;
        }
        case 'batch': {
          const w = ev.w;
          if (!w.alive) break;
          const job = w.job;
          job.done += ev.chunks;
          if (job.done >= job.totalChunks) {
            this.finishJob(job);
            policy.freed();
            break;
          }
          if (policy.leaves(w)) {
            this.exit(w);
            policy.freed();
            break;
          }
          this.receive(w);
          break;
        }
        case 'poll': {
          const w = ev.w;
          if (!w.alive) break;
          if (w.job.handed < w.job.totalChunks) {
            this.receive(w);
            break;
          }
          if (policy.leaves(w)) {
            this.exit(w);
            policy.freed();
            break;
          }
          if (this.now - (w.idleSince ?? this.now) >= IDLE_EXIT_S) {
            this.exit(w);
            policy.freed();
            break;
          }
          events.push({ t: this.now + LONG_POLL_S, kind: 'poll', w });
          break;
        }
        case 'reaper': {
          policy.reaper();
          events.push({ t: this.now + REAPER_S, kind: 'reaper' });
          break;
        }
      }
    }
    return this.metrics.result(policy.name, this.jobs, {
      peakRequested: this.peakRequested,
      launchFailures: this.launchFailures,
      shedForShare: policy.shedForShare,
      shedForChunks: policy.shedForChunks,
    });
  }

  launch(job: SimJob, count: number): void {
    let failed = 0;
    for (let i = 0; i < count; i++) {
      if (this.alive >= this.budget) {
        // Only today's policy ever gets here: the account's quota refuses the task.
        failed++;
        continue;
      }
      const w: SimWorker = { job, alive: true, busy: false, released: false };
      this.alive++;
      this.aliveBySite.set(job.u.site, (this.aliveBySite.get(job.u.site) ?? 0) + 1);
      job.live.add(w);
      job.firstWorkerAt ??= this.now;
      const delay = START_DELAY_S[0] + this.r() * (START_DELAY_S[1] - START_DELAY_S[0]);
      this.events.push({ t: this.now + delay, kind: 'start', w });
    }
    this.launchFailures += failed;
    this.peakRequested = Math.max(this.peakRequested, this.alive + failed);
  }

  private exit(w: SimWorker): void {
    if (!w.alive) return;
    w.alive = false;
    if (w.busy) this.busy--;
    w.busy = false;
    this.alive--;
    this.aliveBySite.set(w.job.u.site, this.aliveBySite.get(w.job.u.site)! - 1);
    w.job.live.delete(w);
    this.policy.exited(w);
  }

  private chunkSize(job: SimJob, i: number): number {
    return Math.min(job.chunkRecords, job.u.records - i * job.chunkRecords);
  }

  private receive(w: SimWorker): void {
    const job = w.job;
    if (job.handed < job.totalChunks) {
      const n = Math.min(CHUNKS_PER_RECEIVE, job.totalChunks - job.handed);
      let records = 0;
      for (let i = 0; i < n; i++) records += this.chunkSize(job, job.handed + i);
      job.handed += n;
      if (!w.busy) this.busy++;
      w.busy = true;
      w.idleSince = undefined;
      this.events.push({ t: this.now + (records * this.p.recordMs) / 1000, kind: 'batch', w, chunks: n });
      return;
    }
    if (w.busy) this.busy--;
    w.busy = false;
    w.idleSince ??= this.now;
    this.events.push({ t: this.now + LONG_POLL_S, kind: 'poll', w });
  }

  private finishJob(job: SimJob): void {
    job.finished = this.now;
    this.active.delete(job);
    this.unfinished--;
    for (const w of [...job.live]) this.exit(w); // the finalize stops the job's tasks
    this.policy.finished(job);
  }
}

/** Simulates the day's uploads under one policy. */
export function simulate(policyName: PolicyName, uploads: readonly Upload[], p: SimParams): Result {
  return new Day(policyName, uploads, p).run();
}
