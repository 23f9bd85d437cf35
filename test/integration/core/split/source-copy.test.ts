/**
 * Which bytes the workers read. The split decides the encoding at the first non-ASCII byte; until then the
 * file is ASCII, the same in UTF-8 and CP932. A UTF-8 upload is read in place; only CP932 and UTF-16 get a
 * UTF-8 copy (docs/performance.md: why chunks are byte ranges). Whatever the position of the first non-ASCII byte,
 * every record must come out exactly once, as decoded.
 */
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { keys } from '../../../../core/jobs/keys.ts';
import { testDeps, useTestAws } from '../../../helpers/aws.ts';
import { FleetLauncher, ownFinalizeQueue, runFaultyJob } from '../../../helpers/faults.ts';
import { checkZip, describeCheck, expectExactlyOnce } from '../../../helpers/jepsen.ts';

const aws = useTestAws();

/** 20,000 records (~300 KB, many stream reads); record `late` (if any) holds the file's only non-ASCII text. */
const RECORDS = 20_000;
const nameOf = (n: number, late?: number) => (n === late ? `堺港 ${n}号` : `name ${n}`);
function csvText(late?: number): string {
  const lines = ['id,name'];
  for (let n = 1; n <= RECORDS; n++) lines.push(`${n},${nameOf(n, late)}`);
  return lines.join('\n') + '\n';
}

describe.concurrent('Scenario: the first non-ASCII byte comes late in the file', () => {
  it.each([
    ['an ASCII-only file', 'utf-8', undefined],
    ['a UTF-8 file whose first non-ASCII record is near the end', 'utf-8', RECORDS - 5],
    ['a CP932 file whose first non-ASCII record is near the end', 'cp932', RECORDS - 5],
  ] as const)('processes %s: every record exactly once, as decoded', async (_what, encoding, late) => {
    // Prepare
    const launcher = new FleetLauncher();
    const deps = await ownFinalizeQueue(testDeps(aws, { launcher }), `copy-${encoding}-${late ?? 'none'}`);
    const text = csvText(late);

    // Act
    const run = await runFaultyJob(deps, launcher, {
      site: 'sakai',
      csv: encoding === 'cp932' ? iconv.encode(text, 'cp932') : text,
      workers: 2,
      deadlineMs: 30_000,
    });

    // Assess
    const check = await checkZip(await deps.objects.bytes(run.job.resultKey!), RECORDS, {
      content: (n, data) => {
        const row = JSON.parse(data.toString('utf8')) as { id?: string; name?: string };
        return row.id === String(n) && row.name === nameOf(n, late) ? undefined : `holds ${data.toString()}`;
      },
    });
    expect(run.job.encoding).toBe(encoding);
    expect(run.job.state, describeCheck(check)).toBe('SUCCEEDED');
    expectExactlyOnce(check);
    const copy = await deps.objects.size(keys.utf8Source('sakai', run.token));
    if (encoding === 'cp932') expect(copy).toBe(Buffer.byteLength(text));
    // A UTF-8 upload is read in place: no second copy of it is written.
    else expect(copy, 'bytes of a UTF-8 copy of a UTF-8 upload').toBeUndefined();
  });
});
