import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  isJobToken,
  keys,
  newJobToken,
  parseSourceKey,
  reportQueueName,
} from '../../../../core/jobs/keys.ts';

const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe('Function: reportQueueName', () => {
  it('is <stage>-report-<sha1(token)> and at most 80 characters', () => {
    // Prepare
    const sha1 = createHash('sha1').update(TOKEN).digest('hex');

    // Act
    const name = reportQueueName('prod', TOKEN);

    // Assess
    expect(name).toBe(`prod-report-${sha1}`);
    expect(name).toMatch(/^[a-z0-9]+-report-[0-9a-f]{40}$/);
    expect(name.length).toBeLessThanOrEqual(80);
    expect(reportQueueName('abcdefghijklmnop', TOKEN).length).toBeLessThanOrEqual(80);
  });

  it('differs per token, so a job never reuses a deleted queue name', () => {
    // Prepare
    const tokens = Array.from({ length: 100 }, () => newJobToken());

    // Act
    const names = new Set(tokens.map((t) => reportQueueName('local', t)));

    // Assess
    expect(names.size).toBe(100);
    expect(tokens.every(isJobToken)).toBe(true);
  });

  it('refuses a stage name that would make the queue name longer than 80', () => {
    // Prepare
    const stage = 's'.repeat(40);

    // Act
    const act = () => reportQueueName(stage, TOKEN);

    // Assess
    expect(act).toThrow(/80/);
  });

  it('allows a queue name of exactly 80 characters, and no more', () => {
    // Prepare
    const fits = 's'.repeat(80 - '-report-'.length - 40);

    // Act
    const name = reportQueueName(fits, TOKEN);

    // Assess
    expect(name).toHaveLength(80);
    expect(() => reportQueueName(`${fits}s`, TOKEN)).toThrow(/80/);
  });
});

describe('Function: isJobToken', () => {
  it.each([
    [TOKEN, true],
    [TOKEN.toUpperCase(), false],
    [`${TOKEN}0`, false],
    [`0${TOKEN}`, false],
    [TOKEN.slice(1), false],
    [TOKEN.replace(/-/g, ''), false],
    [TOKEN.replace('0f8', '0g8'), false],
    ['', false],
  ])('%s → %s', (value, expected) => {
    // Prepare
    const v = value;

    // Act
    const ok = isJobToken(v);

    // Assess
    expect(ok).toBe(expected);
  });
});

describe('Function: parseSourceKey', () => {
  it('parses the key a job source is stored under', () => {
    // Prepare
    const key = keys.source('sakai', TOKEN);

    // Act
    const ids = parseSourceKey(key);

    // Assess
    expect(key).toBe(`uploads/sakai/${TOKEN}/source.csv`);
    expect(ids).toEqual({ site: 'sakai', token: TOKEN });
  });

  it.each([
    [`jobs/sakai/${TOKEN}/source.csv`],
    [`uploads/sakai/${TOKEN}/other.csv`],
    [`uploads/sakai/${TOKEN}/source.csv.bak`],
    [`uploads/Sakai/${TOKEN}/source.csv`],
    [`uploads/../${TOKEN}/source.csv`],
    [`uploads/sakai/x/${TOKEN}/source.csv`],
    [`uploads/sakai/${TOKEN.toUpperCase()}/source.csv`],
    [`uploads/sakai/${'-'.repeat(36)}/source.csv`],
    [`uploads/sakai/${TOKEN.replace(/-/g, 'a')}/source.csv`],
    [`prefix/uploads/sakai/${TOKEN}/source.csv`],
    [`uploads/s/${TOKEN}/source.csv`],
    [`uploads/${'s'.repeat(32)}/${TOKEN}/source.csv`],
    [`uploads/9sakai/${TOKEN}/source.csv`],
    [`uploads/sakai/${TOKEN}/sourcexcsv`],
    [`uploads/sakai/${TOKEN}0/source.csv`],
  ])('ignores %s', (key) => {
    // Prepare
    const k = key;

    // Act
    const ids = parseSourceKey(k);

    // Assess
    expect(ids).toBeUndefined();
  });
});

describe('Function: parseSourceKey (site ids)', () => {
  it.each([['ab'], ['s'.repeat(31)], ['site-2'], ['a0-9']])('parses the key of site %s', (site) => {
    // Prepare
    const key = keys.source(site, TOKEN);

    // Act
    const ids = parseSourceKey(key);

    // Assess
    expect(ids).toEqual({ site, token: TOKEN });
  });
});

describe('Object: keys', () => {
  it('puts the site first after the area in every key', () => {
    // Prepare
    const site = 'kawasaki';

    // Act
    const all = [
      keys.source(site, TOKEN),
      keys.rejected(site, TOKEN),
      keys.part(site, TOKEN, 12),
      keys.result(site, TOKEN),
      keys.movedSource(site, TOKEN),
      keys.utf8Source(site, TOKEN),
      keys.failed(site, TOKEN),
      keys.gaveUpPart(site, TOKEN, 12),
    ];

    // Assess
    expect(all).toEqual([
      `uploads/kawasaki/${TOKEN}/source.csv`,
      `jobs/kawasaki/${TOKEN}/rejected.jsonl`,
      `jobs/kawasaki/${TOKEN}/parts/0000012.part`,
      `results/kawasaki/${TOKEN}/${TOKEN}.zip`,
      `jobs/kawasaki/${TOKEN}/source.csv`,
      `jobs/kawasaki/${TOKEN}/source.utf8.csv`,
      `jobs/kawasaki/${TOKEN}/failed.jsonl`,
      `jobs/kawasaki/${TOKEN}/parts/0000012.gave-up.part`,
    ]);
  });
});
