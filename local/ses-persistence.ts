/**
 * The local SES emulator (aws-ses-v2-local) keeps its mails in memory; the local state promises to keep them.
 * Every mail it stores is written to the state directory at once (atomically), and read back at start.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import sesStore from 'aws-ses-v2-local/dist/store.js';

type Store = { emails: unknown[] };

/** Makes the emulator's mail store persistent in `file` (restoring what it holds). */
export function persistMails(file: string): void {
  const store = (sesStore as unknown as { getStoreReadonly(): Store }).getStoreReadonly();
  const save = (mails: unknown[]) => {
    writeFileSync(`${file}.tmp`, JSON.stringify(mails));
    renameSync(`${file}.tmp`, file);
  };
  const persistent = (mails: unknown[]): unknown[] => {
    const push = mails.push.bind(mails);
    mails.push = (...m: unknown[]) => {
      const n = push(...m);
      save(mails);
      return n;
    };
    return mails;
  };
  let emails = persistent(existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown[]) : []);
  Object.defineProperty(store, 'emails', {
    get: () => emails,
    // The emulator's own "clear" replaces the array.
    set: (v: unknown[]) => {
      emails = persistent(v);
      save(emails);
    },
  });
}
