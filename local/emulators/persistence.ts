/**
 * The emulators' state directory written as they go: every file replaced whole (a killed process leaves the old
 * file or the new one), in order per path, and nothing acknowledged before it is on disk.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../core/shared/atomic-write.ts';

/**
 * Writes and deletes files in order per path, without blocking the emulator; `flush` waits for what was asked so
 * far (the emulator answers a write only once its file is on disk, so a kill -9 loses nothing it acknowledged).
 */
export class FileWriter {
  private readonly chains = new Map<string, Promise<void>>();
  private chain(path: string, op: () => Promise<unknown>): void {
    const next = (this.chains.get(path) ?? Promise.resolve()).then(op).then(
      () => undefined,
      (err: unknown) => void process.stderr.write(`emulator: persisting ${path} failed: ${String(err)}\n`),
    );
    this.chains.set(path, next);
    void next.then(() => {
      if (this.chains.get(path) === next) this.chains.delete(path);
    });
  }
  write(path: string, body: Buffer): void {
    this.chain(path, async () => {
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, body);
    });
  }
  remove(path: string): void {
    this.chain(path, () => rm(path, { force: true }));
  }
  async flush(): Promise<void> {
    while (this.chains.size) await Promise.all(this.chains.values());
  }
}
