import fc from 'fast-check';
import { describe, it } from 'vitest';
import { decodeToUtf8 } from '../../core/source/decode.ts';
import {
  budget,
  chunked,
  chunking,
  csvText,
  encode,
  encoding,
  expectSame,
  junkText,
  maxRecordBytes,
  reference,
  scanned,
  checkProperty,
  fuzzTimeout,
} from '../helpers/csv-arbitraries.ts';

describe('Property: the boundary scanner agrees with the csv-parse reader', () => {
  it(
    'on generated CSV files, whatever the chunking of either reader and the size limit',
    async () => {
      await checkProperty(
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
    fuzzTimeout,
  );

  it(
    'on any sequence of quotes, delimiters, line breaks, NULs, BOMs and multi-byte characters',
    async () => {
      await checkProperty(
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
    fuzzTimeout,
  );

  it(
    'behind the decoder: BOMs, UTF-16, CP932 and characters split across read buffers',
    async () => {
      await checkProperty(
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
    fuzzTimeout,
  );
});
