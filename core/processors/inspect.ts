/**
 * Child-process entry that reads one user's processor file (core/processors/users.ts runInspection):
 * `inspect.ts <file> <name> <stage> [job JSON]`. It imports the file, checks it is a processor, and sends its
 * manifest (and, given a job, what its `checkJob` says of it) over IPC. Whatever the file does — throw, exit,
 * hang — happens in this process only; the parent kills it after a timeout.
 */
import { pathToFileURL } from 'node:url';
import { getStage } from '../../config/index.ts';
import { errorMessage } from '../shared/errors.ts';
import { ratePerSecond } from './settings.ts';
import { checkedProcessor, importGuarded, type InspectAnswer } from './users.ts';

const [file, name, stage, reserved, jobJson] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string | undefined,
];

async function inspect(): Promise<InspectAnswer> {
  let mod: Record<string, unknown>;
  try {
    mod = await importGuarded(pathToFileURL(file).href);
  } catch (err) {
    return { ok: false, error: errorMessage(err).split('\n').slice(0, 6).join(' ').trim() };
  }
  let answer: InspectAnswer;
  try {
    const p = checkedProcessor(mod, `processors/${name}.ts`, name, reserved.split(','));
    const perSecond = ratePerSecond(p, getStage(stage));
    answer = {
      ok: true,
      manifest: {
        name: p.name,
        description: p.description,
        ...(p.concurrency !== undefined ? { concurrency: p.concurrency } : {}),
        ...(p.costMs !== undefined ? { costMs: p.costMs } : {}),
        ...(p.rateLimit && perSecond !== undefined
          ? { rateLimit: { ...(p.rateLimit.key ? { key: p.rateLimit.key } : {}), perSecond } }
          : {}),
        ...(p.sideEffects !== undefined ? { sideEffects: p.sideEffects } : {}),
        ...(p.takesTemplate !== undefined ? { takesTemplate: p.takesTemplate } : {}),
        ...(p.timeoutMs !== undefined ? { timeoutMs: p.timeoutMs } : {}),
        ...(p.needs && typeof p.needs !== 'function'
          ? { needs: { columns: p.needs.columns.map(String) } }
          : {}),
        checkJob: typeof p.checkJob === 'function',
      },
    };
    if (jobJson !== undefined && p.checkJob) {
      try {
        p.checkJob(JSON.parse(jobJson) as Parameters<NonNullable<typeof p.checkJob>>[0]);
      } catch (err) {
        const e = err as { name?: unknown; code?: unknown; status?: unknown };
        // A refusal (a BadRequestError of the module's own copy of the class): passed on as it is.
        if (e.name !== 'BadRequestError' || typeof e.code !== 'string') throw err;
        const status = typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 400;
        answer = { ...answer, refusal: { code: e.code, message: errorMessage(err), status } };
      }
    }
  } catch (err) {
    answer = { ok: false, error: errorMessage(err) };
  }
  return answer;
}

const answer = await inspect();
// The module may hold the event loop (a timer, a socket): the answer sent, this process ends.
process.send?.(answer, () => process.exit(0));
