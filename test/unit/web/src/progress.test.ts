import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { getStage } from '../../../../config/index.ts';
import type { JobView } from '../../../../core/intake/operations.ts';
import { DEFAULT_PROCESSOR, processorNames } from '../../../../core/processors/index.ts';
import { SAMPLE_HEADER, sampleRecords, writeSampleCsv } from '../../../../cli/gen-data.ts';
import { consoleSettings } from '../../../../web/build.ts';
import { MESSAGES, translate, type MessageKey } from '../../../../web/src/messages.ts';
import { addSample, averageRate, estimate, RATE_WINDOW_MS } from '../../../../web/src/progress.ts';
import * as browserData from '../../../../web/src/sample-data.ts';
import type { JobView as ConsoleJobView } from '../../../../web/src/types.ts';

describe('Type: the console JobView', () => {
  it("accepts every JobView core answers (a field core adds or changes breaks the console's type-check)", () => {
    expectTypeOf<JobView>().toExtend<ConsoleJobView>();
  });
});

describe('Function: consoleSettings', () => {
  it("takes the direct-upload limit from the stage's config and the processors from core", () => {
    // Prepare
    const stage = 'prod';

    // Act
    const s = consoleSettings(stage);

    // Assess
    expect(s).toEqual({
      directUploadMaxBytes: getStage(stage).limits.directUploadMaxBytes,
      processors: processorNames(),
      defaultProcessor: DEFAULT_PROCESSOR,
    });
  });
});

describe('Function: estimate', () => {
  it('answers the rate over the samples and the time left at that rate', () => {
    // Prepare
    let samples = addSample([], { at: 0, done: 0 });
    samples = addSample(samples, { at: 2000, done: 1000 });
    samples = addSample(samples, { at: 4000, done: 2000 });

    // Act
    const e = estimate(samples, 10_000);

    // Assess
    expect(e.rate).toBe(500);
    expect(e.etaSeconds).toBe(16);
  });

  it('has no rate from a single sample or samples under half a second apart, and no ETA without a total', () => {
    // Prepare
    const one = addSample([], { at: 0, done: 10 });
    const close = addSample(one, { at: 400, done: 20 });
    const two = addSample(one, { at: 1000, done: 20 });

    // Act
    const results = [estimate(one, 100), estimate(close, 100), estimate(two, undefined)];

    // Assess
    expect(results).toEqual([{}, {}, { rate: 10 }]);
  });

  it('answers a rate of 0 and no ETA while nothing moves, and looks back only over the window', () => {
    // Prepare
    let samples = addSample([], { at: 0, done: 0 });
    samples = addSample(samples, { at: 1000, done: 0 });
    const still = estimate(samples, 100);
    for (let t = 2000; t <= 60_000; t += 1000)
      samples = addSample(samples, { at: t, done: t < 40_000 ? t : 40_000 });

    // Act
    const stalled = estimate(samples, 100_000);

    // Assess
    expect(still).toEqual({ rate: 0 });
    expect(samples[0]!.at).toBeGreaterThanOrEqual(60_000 - RATE_WINDOW_MS - 1000);
    expect(stalled).toEqual({ rate: 0 });
  });

  it('averages a finished job over its whole run, and has none for a job without records', () => {
    // Prepare
    const at = '2026-11-21T00:00:00.000Z';

    // Act
    const rates = [
      averageRate(300, at, '2026-11-21T00:00:02.000Z'),
      averageRate(0, at, '2026-11-21T00:00:02.000Z'),
      averageRate(300, at, undefined),
    ];

    // Assess
    expect(rates).toEqual([150, undefined, undefined]);
  });
});

describe('Function: sampleCsvParts', () => {
  it('generates the very bytes `rowfleet loadtest` writes for the same number of records', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'rowfleet-sample-'));
    const file = join(dir, 'sample.csv');
    const records = 25_000;

    // Act
    await writeSampleCsv(file, records);
    const fromScripts = readFileSync(file, 'utf8');
    const fromBrowser = browserData.sampleCsvParts(records).join('');
    rmSync(dir, { recursive: true, force: true });

    // Assess
    expect(browserData.SAMPLE_HEADER).toEqual(SAMPLE_HEADER);
    expect([...browserData.sampleRecords(100, 7)]).toEqual([...sampleRecords(100, 7)]);
    expect(fromBrowser.length).toBe(fromScripts.length);
    expect(fromBrowser === fromScripts).toBe(true);
    expect(browserData.sampleCsvParts(records).length).toBeGreaterThan(1);
  });
});

describe('Function: translate', () => {
  const keys = Object.keys(MESSAGES.en) as MessageKey[];
  const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

  it('has every message in Japanese too, non-empty and with the same placeholders', () => {
    // Prepare
    const mismatched: string[] = [];

    // Act
    for (const k of keys) {
      const ja = MESSAGES.ja[k];
      if (!ja || JSON.stringify(placeholders(ja)) !== JSON.stringify(placeholders(MESSAGES.en[k])))
        mismatched.push(k);
    }

    // Assess
    expect(keys.length).toBeGreaterThan(100);
    expect(Object.keys(MESSAGES.ja).sort()).toEqual([...keys].sort());
    expect(mismatched).toEqual([]);
  });

  it('fills the placeholders it is given and leaves the others visible', () => {
    // Prepare
    const params = { done: 5, total: '10' };

    // Act
    const en = translate('en', 'detail.progressText', params);
    const ja = translate('ja', 'detail.progressText', params);
    const missing = translate('en', 'detail.progressText', { done: 1 });

    // Assess
    expect(en).toBe('5 of 10 records');
    expect(ja).toBe('10 件中 5 件');
    expect(missing).toBe('1 of {total} records');
  });
});
