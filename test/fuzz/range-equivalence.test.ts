import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Chunker, type ChunkMessage } from '../../core/messages/chunk.ts';
import { readRangeCsvParse, readRecordBatches, type RecordEvent } from '../../core/source/csv.ts';
import { readRange, scanRecordBatches } from '../../core/source/scan.ts';
import { FileRejectedError } from '../../core/shared/errors.ts';
import {
  budget,
  chunked,
  chunking,
  csvText,
  fuzzSeconds,
  junkText,
  maxRecordBytes,
  type Outcome,
} from '../helpers/csv-arbitraries.ts';

/** Every event and the error, fields included. */
async function withFields(batches: AsyncIterable<unknown[]>): Promise<Outcome> {
  const events: unknown[] = [];
  try {
    for await (const batch of batches) events.push(...batch);
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    return { events, error: { code: err.code, line: err.line, message: err.message } };
  }
  return { events };
}

/** Runs a property, prints how many cases it checked, and fails with the counterexample and its seed. */
async function check(name: string, property: fc.IAsyncProperty<unknown>, params: fc.Parameters<unknown>) {
  const details = await fc.check(property, params);
  process.stdout.write(
    `[fuzz] ${name}: ${details.numRuns} cases, ${details.failed ? 1 : 0} disagreements (seed ${details.seed})\n`,
  );
  if (details.failed)
    throw new Error(`${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
  expect(details.numRuns).toBeGreaterThan(0);
}

const timeout = fuzzSeconds > 0 ? fuzzSeconds * 1000 + 120_000 : 60_000;

describe('Property: the fields the scanner gives are the fields csv-parse gives', () => {
  it(
    'over a whole file (scanRecordBatches withFields), whatever the chunking',
    async () => {
      await check(
        'fields, whole file',
        fc.asyncProperty(
          fc.oneof(csvText, junkText),
          chunking,
          chunking,
          maxRecordBytes,
          async (text, a, b, max) => {
            // Prepare
            const bytes = Buffer.from(text, 'utf8');
            const opts = { maxRecordBytes: max(text) };

            // Act
            const ref = await withFields(readRecordBatches(chunked(bytes, a), opts));
            const scan = await withFields(
              scanRecordBatches(chunked(bytes, b), { ...opts, withFields: true }),
            );

            // Assess
            expect(scan.error).toEqual(ref.error);
            if (ref.error) {
              const k = Math.min(ref.events.length, scan.events.length);
              expect(scan.events.slice(0, k)).toEqual(ref.events.slice(0, k));
            } else expect(scan.events).toEqual(ref.events);
          },
        ),
        budget(400),
      );
    },
    timeout,
  );

  it(
    "in every range the split cuts (readRange, the workers' read, against csv-parse)",
    async () => {
      await check(
        'ranges',
        fc.asyncProperty(
          csvText,
          maxRecordBytes,
          fc.integer({ min: 1, max: 300 }),
          fc.integer({ min: 1, max: 12 }),
          async (text, max, maxBytes, maxRecords) => {
            // Prepare: only files the split accepts reach the workers
            const bytes = Buffer.from(text, 'utf8');
            const maxRecordBytes = max(text);
            const all = await withFields(
              readRecordBatches(chunked(bytes, [bytes.length || 1]), { maxRecordBytes }),
            );
            if (all.error) return;
            const [header, ...records] = all.events as RecordEvent[];
            if (header?.kind !== 'header') throw new Error('no header');
            const chunker = new Chunker('sakai', 'token', 'key', header, { maxBytes, maxRecords });
            const chunks: ChunkMessage[] = [];
            for (const r of records) {
              if (r.kind === 'header') continue;
              const c = chunker.add(r);
              if (c) chunks.push(c);
            }
            const last = chunker.flush();
            if (last) chunks.push(last);

            for (const c of chunks) {
              const start = {
                header: header.header,
                delimiter: header.delimiter,
                n: c.n,
                line: c.line,
                maxRecordBytes,
              };
              const range = bytes.subarray(c.start, c.end);

              // Act
              const got = readRange(range, start);

              // Assess
              expect(got).toEqual(readRangeCsvParse(range, start));
            }
          },
        ),
        budget(300),
      );
    },
    timeout,
  );
});
