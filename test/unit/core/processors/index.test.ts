import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../../../core/shared/errors.ts';
import {
  listProcessors,
  loadProcessor,
  processorNames,
  processorOf,
} from '../../../../core/processors/index.ts';
import { jsonProcessor } from '../../../../core/processors/json.ts';
import { reportProcessor } from '../../../../core/processors/report.ts';

const ctx = (header: string[]) => ({ site: 'sakai', token: '0f8fad5b-d9cb-469f-a165-70867728950e', header });

async function one(p: typeof jsonProcessor, fields: string[], header: string[], n = 7) {
  const out = await p.process({ n, line: n + 1, fields }, ctx(header));
  expect(out).toHaveLength(1);
  return { name: out[0]!.name, text: String(out[0]!.data) };
}

describe('Processor: json', () => {
  it('writes rows/<n>.json keyed by header name with the exact string values', async () => {
    // Prepare
    const header = ['id', '名前', 'memo', 'empty', 'num'];
    const fields = ['001', '山田\u3000太郎', ' line1\r\nline2 "q" \t', '', '1e3'];

    // Act
    const r = await one(jsonProcessor, fields, header);

    // Assess
    expect(r.name).toBe('rows/7.json');
    const parsed = JSON.parse(r.text) as Record<string, unknown>;
    expect(Object.entries(parsed)).toEqual(header.map((h, i) => [h, fields[i]]));
  });

  it('keeps a "__proto__" header as a plain own key, never the prototype', async () => {
    // Prepare
    const header = ['__proto__', 'constructor', 'toString'];
    const fields = ['{"polluted":true}', 'c', 't'];

    // Act
    const r = await one(jsonProcessor, fields, header);

    // Assess
    const parsed = JSON.parse(r.text) as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(header);
    expect(Object.getOwnPropertyDescriptor(parsed, '__proto__')?.value).toBe('{"polluted":true}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('Processor: report', () => {
  it('writes reports/<n>.html with every header and value HTML-escaped', async () => {
    // Prepare
    const header = ['<b>name</b>', 'note'];
    const fields = ['<script>alert("x")</script>', `Tom & Jerry's "show"`];

    // Act
    const r = await one(reportProcessor, fields, header, 3);

    // Assess
    expect(r.name).toBe('reports/3.html');
    expect(r.text).not.toContain('<script>');
    expect(r.text).not.toContain('<b>');
    expect(r.text).toContain(
      '<th>&lt;b&gt;name&lt;/b&gt;</th><td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</td>',
    );
    expect(r.text).toContain('<th>note</th><td>Tom &amp; Jerry&#39;s &quot;show&quot;</td>');
    expect(r.text).toContain('Record 3');
  });
});

describe('Function: loadProcessor', () => {
  it('finds the built-in processors and refuses an unknown name with a 400', async () => {
    // Prepare
    const names = processorNames();

    // Act
    const unknown = await loadProcessor('nope').catch((err: unknown) => err);
    const traversal = await loadProcessor('../core/deps').catch((err: unknown) => err);

    // Assess
    expect(names).toEqual(expect.arrayContaining(['json', 'report', 'mail']));
    expect(await loadProcessor('json')).toBe(jsonProcessor);
    expect(unknown).toBeInstanceOf(BadRequestError);
    expect((unknown as BadRequestError).status).toBe(400);
    expect((unknown as BadRequestError).code).toBe('UNKNOWN_PROCESSOR');
    expect((unknown as BadRequestError).message).toContain('json');
    expect((traversal as BadRequestError).code).toBe('UNKNOWN_PROCESSOR');
  });

  it("finds a user's processor by its file in processors/, without any registry", async () => {
    // Act
    const p = await loadProcessor('webhook');
    const listed = await listProcessors();

    // Assess
    expect(processorNames()).toContain('webhook');
    expect(p.name).toBe('webhook');
    expect(p.sideEffects).toBe(true);
    expect(listed.find((l) => l.processor?.name === 'webhook')?.source).toBe('processors/webhook.ts');
    expect(listed.find((l) => l.processor?.name === 'json')?.source).toBe('built-in');
  });
});

describe('Function: processorOf', () => {
  it("refuses a user's module that is no processor or is named unlike its file, naming the problem", () => {
    // Prepare
    const proc = { name: 'geo', description: 'd', process: () => [] };

    // Act
    const named = () => processorOf({ default: proc }, 'processors/other.ts', 'other');
    const broken = () => processorOf({ default: { ...proc, concurrency: 0 } }, 'processors/geo.ts', 'geo');
    const none = () => processorOf({}, 'processors/geo.ts', 'geo');

    // Assess
    expect(processorOf({ default: proc }, 'processors/geo.ts', 'geo')).toBe(proc);
    expect(processorOf({ processor: proc }, 'processors/geo.ts', 'geo')).toBe(proc);
    expect(named).toThrow('processors/other.ts: the processor is named "geo", not "other"');
    expect(broken).toThrow(/processors\/geo.ts: not a row processor \(concurrency/);
    expect(none).toThrow(/not a row processor/);
  });
});
