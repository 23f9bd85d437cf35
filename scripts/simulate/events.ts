/** The simulation's events and their queue: a binary heap by time, then insertion order (deterministic). */
import type { SimJob, SimWorker } from './model.ts';

export type SimEvent =
  | { t: number; seq: number; kind: 'ready'; job: SimJob }
  | { t: number; seq: number; kind: 'start' | 'poll'; w: SimWorker }
  | { t: number; seq: number; kind: 'batch'; w: SimWorker; chunks: number }
  | { t: number; seq: number; kind: 'reaper' };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** A binary heap of events by time (then insertion order: deterministic). */
export class Events {
  private readonly a: SimEvent[] = [];
  private seq = 0;

  push(e: DistributiveOmit<SimEvent, 'seq'>): void {
    const ev = { ...e, seq: this.seq++ } as SimEvent;
    const a = this.a;
    a.push(ev);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!earlier(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): SimEvent | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && earlier(a[l]!, a[m]!)) m = l;
        if (r < a.length && earlier(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

const earlier = (x: SimEvent, y: SimEvent) => x.t < y.t || (x.t === y.t && x.seq < y.seq);
