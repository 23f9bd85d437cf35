import { describe, expect, it } from 'vitest';
import { checkKey, mayRun, type CheckState } from '../../../../web/src/check-rules.ts';
import { previewHtml } from '../../../../web/src/preview-html.ts';
import type { CheckResult } from '../../../../web/src/types.ts';

const file = { name: 'orders.csv', size: 1200, lastModified: 1_765_000_000_000 };
/** An error as the console's API client throws it: its message and the HTTP status. */
const apiError = (status: number, code: string) => Object.assign(new Error(code), { status, code });
const options = { processor: 'mail', template: 'notice' };
const result = (ok: boolean): CheckResult => ({
  check: true,
  site: 'sakai',
  processor: 'mail',
  encoding: 'CP932',
  delimiter: ',',
  header: ['email'],
  records: 3,
  valid: 3,
  ok,
  problems: [],
  rejected: { count: 0, first: [] },
  needs: { columns: ['email'], missing: [] },
  samples: [],
  estimate: {
    workers: 1,
    workersNow: 1,
    seconds: 3,
    region: 'ap-northeast-1',
    usd: 0.001,
    jpy: 0.15,
    jpyPerUsd: 150,
    pricesAsOf: '2026-11-01',
    breakdown: [],
  },
});

describe('Function: mayRun', () => {
  const key = checkKey(file, options);
  it.each<[string, CheckState, string | undefined, boolean]>([
    ['a passed check of this file and options', { kind: 'done', key, result: result(true) }, key, true],
    ['a check that found problems', { kind: 'done', key, result: result(false) }, key, false],
    ['no check yet', { kind: 'idle' }, key, false],
    ['a check under way', { kind: 'checking', key }, key, false],
    ['no file chosen', { kind: 'done', key, result: result(true) }, undefined, false],
    [
      'a passed check of the file before it was replaced',
      { kind: 'done', key, result: result(true) },
      checkKey({ ...file, lastModified: file.lastModified + 1 }, options),
      false,
    ],
    [
      'a passed check with other options',
      { kind: 'done', key, result: result(true) },
      checkKey(file, { ...options, template: 'other' }),
      false,
    ],
    [
      'a file too large to be checked before its run (413)',
      { kind: 'failed', key, error: apiError(413, 'TOO_LARGE_TO_CHECK') },
      key,
      true,
    ],
    ['a file the check refused (422)', { kind: 'failed', key, error: apiError(422, 'NOT_CSV') }, key, false],
    ['a check that did not answer', { kind: 'failed', key, error: new Error('network') }, key, false],
  ])('%s → %s', (_, state, now, expected) => {
    // Act
    const r = mayRun(state, now);

    // Assess
    expect(r).toBe(expected);
  });
});

describe('Function: previewHtml', () => {
  it('leaves out scripts, style sheets, style attributes and images, keeping the text and alt', () => {
    // Prepare
    const html =
      '<html><head><style>p{color:red}</style><link rel="stylesheet" href="https://x.example/a.css"></head>' +
      '<body style="margin:0"><script>alert(1)</script><p STYLE=\'color:blue\'>堺 様</p>' +
      '<img src="https://x.example/logo.png" alt="ロゴ"><table background="bg.png"><tr><td>1</td></tr></table></body></html>';

    // Act
    const r = previewHtml(html);

    // Assess
    expect(r).toEqual({
      html: '<html><head></head><body><p>堺 様</p><img alt="ロゴ"><table><tr><td>1</td></tr></table></body></html>',
      removed: true,
    });
  });

  it('answers HTML with nothing the policy refuses as it is', () => {
    // Prepare
    const html = '<p>{{氏名}} 様</p><table><tr><th>品目</th><td>机</td></tr></table>';

    // Act
    const r = previewHtml(html);

    // Assess
    expect(r).toEqual({ html, removed: false });
  });
});
