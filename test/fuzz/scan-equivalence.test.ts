import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeToUtf8 } from '../../core/source/decode.ts';
import {
  budget,
  chunked,
  chunking,
  csvText,
  encode,
  encoding,
  expectSame,
  fuzzSeconds,
  junkText,
  maxRecordBytes,
  reference,
  scanned,
} from '../helpers/csv-arbitraries.ts';

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

describe('Property: the boundary scanner agrees with the csv-parse reader', () => {
  it(
    'on generated CSV files, whatever the chunking of either reader and the size limit',
    async () => {
      await check(
        'generated CSV',
        fc.asyncProperty(csvText, chunking, chunking, maxRecordBytes, async (text, a, b, max) => {
          // Prepare
          const bytes = Buffer.from(text, 'utf8');
          const opts = { maxRecordBytes: max(text) };

          // Act
          const ref = await reference(chunked(bytes, a), opts);
          const scan = await scanned(chunked(bytes, b), opts);

          // Assess
          expectSame(ref, scan);
        }),
        budget(400),
      );
    },
    timeout,
  );

  it(
    'on any sequence of quotes, delimiters, line breaks, NULs, BOMs and multi-byte characters',
    async () => {
      await check(
        'junk',
        fc.asyncProperty(junkText, chunking, chunking, maxRecordBytes, async (text, a, b, max) => {
          // Prepare
          const bytes = Buffer.from(text, 'utf8');
          const opts = { maxRecordBytes: max(text) };

          // Act
          const ref = await reference(chunked(bytes, a), opts);
          const scan = await scanned(chunked(bytes, b), opts);

          // Assess
          expectSame(ref, scan);
        }),
        budget(600),
      );
    },
    timeout,
  );

  it(
    'behind the decoder: BOMs, UTF-16, CP932 and characters split across read buffers',
    async () => {
      await check(
        'decoded upload',
        fc.asyncProperty(
          csvText,
          encoding,
          chunking,
          chunking,
          maxRecordBytes,
          async (text, enc, a, b, max) => {
            // Prepare
            const bytes = encode(text, enc);
            const opts = { maxRecordBytes: max(text) };

            // Act
            const ref = await reference(decodeToUtf8(chunked(bytes, a)), opts);
            const scan = await scanned(decodeToUtf8(chunked(bytes, b)), opts);

            // Assess
            expectSame(ref, scan);
          },
        ),
        budget(300),
      );
    },
    timeout,
  );
});
