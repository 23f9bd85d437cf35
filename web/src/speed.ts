import { useRef } from 'preact/hooks';
import { addSample, averageRate, estimate, type Estimate, type ProgressSample } from './progress.ts';
import { isFinished, type JobView } from './types.ts';

/** Rate and ETA of jobs, from the progress polling saw (kept per job token across polls). */
export function useSpeed() {
  const samples = useRef(new Map<string, { at: number; list: ProgressSample[] }>());
  return (job: JobView, at: number | undefined): Estimate => {
    if (isFinished(job.state))
      return { rate: averageRate(job.progress.done, job.receivedAt, job.finishedAt) };
    if (at === undefined) return {};
    const seen = samples.current.get(job.token);
    let list = seen?.list ?? [];
    if (!seen || seen.at !== at) {
      list = addSample(list, { at, done: job.progress.done });
      samples.current.set(job.token, { at, list });
    }
    return estimate(list, job.progress.total);
  };
}
