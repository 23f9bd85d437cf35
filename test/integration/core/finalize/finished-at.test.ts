/**
 * A job's finishedAt is the moment its state became final, after its zip was written: an SRE who reads
 * finishedAt − receivedAt reads the job's whole time, the zip's included (it was taken before the zip was built,
 * which left a million-record job's ten seconds of zipping out of it).
 */
import { describe, expect, it } from 'vitest';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { keys } from '../../../../core/jobs/keys.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { csvOf, drainFinalizeRequests, runLaunchedWorkers } from '../../../helpers/pipeline-jobs.ts';

const aws = useTestAws();

describe('Function: finalizeJob — finishedAt', () => {
  it('is taken after the zip is complete in storage, and the attempt ends then too', async () => {
    // Prepare: the zip's upload completes slowly, and its completion time is kept.
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 4 } });
    const view = await startDirectJob(deps, 'sakai', Buffer.from(csvOf(10), 'utf8'), { processor: 'json' });
    const zipKey = keys.result('sakai', view.token);
    let zipDoneAt = 0;
    const multipart = deps.objects.multipart.bind(deps.objects);
    deps.objects.multipart = (key, ...rest) => {
      const upload = multipart(key, ...rest);
      if (key !== zipKey) return upload;
      return {
        ...upload,
        done: async () => {
          await new Promise((r) => setTimeout(r, 50));
          const etag = await upload.done();
          zipDoneAt = Date.now();
          return etag;
        },
      };
    };
    await runLaunchedWorkers(deps, launcher, new Set([view.token]));
    await drainFinalizeRequests(deps);

    // Act
    const result = await finalizeJob(deps, 'sakai', view.token);
    const job = await deps.jobs.get('sakai', view.token);

    // Assess
    expect(result.state).toBe('SUCCEEDED');
    expect(zipDoneAt).toBeGreaterThan(0);
    expect(Date.parse(job!.finishedAt!)).toBeGreaterThanOrEqual(zipDoneAt);
    expect(Date.parse(job!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(job!.finalizingAt!) + 50);
  });
});
