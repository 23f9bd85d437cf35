/**
 * The one atomic file write: the data goes to a temporary file beside the target, then is renamed over it, so a
 * process killed at any moment leaves the old file or the new one, never half of one. Shaped like
 * write-file-atomic's (`writeFileAtomic`, `.sync`, `mode`), so that taking that package (7.x, the last line for
 * Node 20; with `fsync: false` to keep today's speed) is a change of this file alone.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * The names of this module's temporary files: whoever lists a directory of atomically written files skips them
 * (one is left behind when a process dies between its write and its rename). Also matches the older
 * `.rowfleet-tmp-N` names a state directory may still hold.
 */
export const ATOMIC_TMP = /\.rowfleet-tmp-[\d-]+$/;

let counter = 0;
const tmpOf = (path: string) => `${path}.rowfleet-tmp-${process.pid}-${++counter}`;

export interface AtomicWriteOptions {
  /** The file's permissions, e.g. 0o600 for a secret. @default 0o666 less the umask */
  readonly mode?: number;
}

/** Writes `data` to `path` atomically (temporary file, then rename). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  o: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tmpOf(path);
  try {
    await writeFile(tmp, data, o.mode === undefined ? {} : { mode: o.mode });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** {@link writeFileAtomic}, synchronous (for exit paths and one-off writes of a command). */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  o: AtomicWriteOptions = {},
): void {
  const tmp = tmpOf(path);
  try {
    writeFileSync(tmp, data, o.mode === undefined ? {} : { mode: o.mode });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
