import { describe, expect, it } from 'vitest';
import { PartOutputs, resultsCsv, statusOf } from '../../../../core/finalize/results-sheet.ts';
import type { PipelineDeps } from '../../../../core/deps.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import type { RecordFailure } from '../../../../core/messages/part.ts';
import { parseResultsCsv } from '../../../helpers/results-csv.ts';

describe('Function: statusOf', () => {
  it("maps errors.csv's codes to results.csv's statuses", () => {
    // Act
    const statuses = [
      undefined,
      'COLUMN_COUNT',
      'NUL_BYTE',
      'IN_DOUBT',
      'CANCELLED',
      'STOPPED_EARLY',
      'MAIL_REFUSED',
    ].map(statusOf);

    // Assess
    expect(statuses).toEqual([
      'succeeded',
      'rejected',
      'rejected',
      'in_doubt',
      'cancelled',
      'stopped_early',
      'failed',
    ]);
  });
});

describe('Function: resultsCsv', () => {
  it('lists every record with its outcome, without its columns, when the source cannot be read', async () => {
    // Prepare: 3 records, record 2 failed; the source is gone
    const deps = {
      objects: { stream: () => Promise.reject(new Error('NoSuchKey')) },
      limits: { maxRecordBytes: 1 << 20 },
    } as unknown as PipelineDeps;
    const job = {
      site: 'sakai',
      token: 't',
      header: ['id', 'name'],
      totalRecords: 3,
      sourceKey: 'k',
    } as unknown as Job;
    const failures = new Map<number, RecordFailure>([
      [2, { n: 2, line: 3, code: 'PROCESSING_FAILED', message: 'boom', raw: '2,b' }],
    ]);

    // Act
    const chunks: Buffer[] = [];
    for await (const c of resultsCsv(
      deps,
      job,
      failures,
      new PartOutputs([], () => Promise.reject(new Error('none'))),
    ))
      chunks.push(c);
    const sheet = parseResultsCsv(Buffer.concat(chunks), 'utf-8-bom');

    // Assess
    // The header line as Excel shows it: the file's columns, then those results.csv adds.
    expect(sheet.header.join(',')).toBe(
      'id,name,rowfleet_record,rowfleet_line,rowfleet_status,rowfleet_code,rowfleet_message,rowfleet_output',
    );
    expect(sheet.rows.map((r) => [r.fields, r.record, r.status, r.code])).toEqual([
      [['', ''], 1, 'succeeded', ''],
      [['', ''], 2, 'failed', 'PROCESSING_FAILED'],
      [['', ''], 3, 'succeeded', ''],
    ]);
  });
});
