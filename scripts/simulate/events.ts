/** The simulation's events and their queue: a binary heap by time, then insertion order (deterministic). */
import { BinaryHeap } from '../../core/shared/heap.ts';
import type { SimJob, SimWorker } from './model.ts';

export type SimEvent =
  | { t: number; seq: number; kind: 'ready'; job: SimJob }
  | { t: number; seq: number; kind: 'start' | 'poll'; w: SimWorker }
  | { t: number; seq: number; kind: 'batch'; w: SimWorker; chunks: number }
  | { t: number; seq: number; kind: 'reaper' };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** The events by time (then insertion order: deterministic). */
export class Events {
  private readonly heap = new BinaryHeap<SimEvent>((x, y) => x.t < y.t || (x.t === y.t && x.seq < y.seq));
  private seq = 0;

  push(e: DistributiveOmit<SimEvent, 'seq'>): void {
    this.heap.push({ ...e, seq: this.seq++ } as SimEvent);
  }

  pop(): SimEvent | undefined {
    return this.heap.pop();
  }
}
