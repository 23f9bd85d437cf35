/**
 * The records a worker has in flight at once, shared by the chunks it holds: a counting semaphore that hands a
 * freed slot to the longest waiter. `tryTake` answers synchronously, so a synchronous processor takes and gives
 * a slot per record without a promise or a microtask.
 */
export class RecordSlots {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  /** The most slots in use at once so far. */
  peak = 0;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1))
      throw new Error(`record slots: size must be ≥ 1, got ${size}`);
    this.free = size;
  }

  /** Takes a slot if one is free and nobody waits for one. */
  tryTake(): boolean {
    if (this.free === 0 || this.waiters.length > 0) return false;
    this.free--;
    if (this.size - this.free > this.peak) this.peak = this.size - this.free;
    return true;
  }

  /** Waits for a slot (after `tryTake` said no); resolves once it holds one. */
  take(): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Gives a slot back: to the longest waiter, or to the pool. */
  give(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }

  get inUse(): number {
    return this.size - this.free;
  }
}
