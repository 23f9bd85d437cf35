import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { dynamoClient } from '../../core/aws/clients.ts';
import { finalizeJob } from '../../core/finalize/finalize.ts';
import { keys } from '../../core/jobs/keys.ts';
import { retryFailedRecords } from '../../core/intake/rerun-failed.ts';
import { runWorker } from '../../core/work/worker.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../helpers/aws.ts';
import { csvOf, runJobs } from '../helpers/pipeline-jobs.ts';
import { readZipText } from '../helpers/zip.ts';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

const aws = useTestAws();

describe('Function: retryFailedRecords', () => {
  it('re-runs exactly the failed records of a finished job from its original upload, as a linked job', async () => {
    // Prepare: a finished job whose records 2 and 4 failed in processing
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const [original] = await runJobs(deps, launcher, [{ site: 'mizushima', office: 'west', csv: csvOf(5) }]);
    const site = original!.site;
    await deps.objects.put(keys.failed(site, original!.token), '{"n":2,"line":3}\n{"n":4,"line":5}\n');
    await dynamoClient().send(
      new UpdateCommand({
        TableName: aws.table,
        Key: { pk: `SITE#${site}`, sk: `JOB#${original!.token}` },
        UpdateExpression: 'SET succeeded = :s, failed = :f, #state = :p',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':s': 3, ':f': 2, ':p': 'PARTIAL' },
      }),
    );

    // Act
    const started = await retryFailedRecords(deps, site, original!.token);
    for (const l of launcher.launches.filter((x) => x.token === started.token)) {
      await runWorker(deps, { site, token: l.token, waitSeconds: 0, idlePolls: 3, visibilitySeconds: 30 });
    }
    const done = await finalizeJob(deps, site, started.token);
    const retried = await deps.jobs.get(site, started.token);

    // Assess
    expect(done.state).toBe('SUCCEEDED');
    expect(retried).toMatchObject({
      retryOf: original!.token,
      office: 'west',
      processor: 'json',
      totalRecords: 2,
    });
    const zip = await readZipText(await deps.objects.bytes(retried!.resultKey!));
    expect(JSON.parse(zip.get('rows/1.json')!)).toEqual({ id: '2', name: 'name 2' });
    expect(JSON.parse(zip.get('rows/2.json')!)).toEqual({ id: '4', name: 'name 4' });
    expect(JSON.parse(zip.get('manifest.json')!)).toMatchObject({ retryOf: original!.token });
  });

  it('refuses a job with nothing to retry, and another site asking', async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher });
    const [clean] = await runJobs(deps, launcher, [{ site: 'kashima', office: 'main', csv: csvOf(3) }]);

    // Act / Assess
    await expect(retryFailedRecords(deps, 'kashima', clean!.token)).rejects.toMatchObject({
      code: 'NOTHING_TO_RETRY',
    });
    await expect(retryFailedRecords(deps, 'sakai', clean!.token)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
