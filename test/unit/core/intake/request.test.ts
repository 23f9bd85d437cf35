import { describe, expect, it } from 'vitest';
import {
  apiModels,
  directJobQuery,
  jobRequestFromJsonBody,
  jobRequestFromQuery,
  parseJobRequest,
  parseOrBadRequest,
} from '../../../../core/intake/request.ts';
import { BadRequestError, NotFoundError } from '../../../../core/shared/errors.ts';
import { z } from 'zod';
import { getJobView, validated } from '../../../../core/intake/operations.ts';
import { cancelJob } from '../../../../core/intake/cancel.ts';
import { loadProcessor } from '../../../../core/processors/index.ts';
import type { PipelineDeps } from '../../../../core/deps.ts';

/** The 400 a request gets, or undefined when it is accepted. */
function refusal(run: () => unknown): BadRequestError | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    if (err instanceof BadRequestError) return err;
    throw err;
  }
}

describe('Function: parseJobRequest', () => {
  it('accepts every option at the edges of its range', () => {
    // Prepare
    const low = {
      fileName: 'a',
      processor: 'j',
      office: '0',
      workers: 1,
      concurrency: 1,
      template: 't',
      simulateDelayMs: 0,
      simulateErrorRate: 0,
    };
    const high = {
      fileName: 'a'.repeat(255),
      processor: 'a-0'.repeat(10) + 'ab',
      office: 'z'.repeat(32),
      workers: 100,
      concurrency: 1000,
      template: 'b'.repeat(32),
      simulateDelayMs: 60_000,
      simulateErrorRate: 1,
    };

    // Act
    const parsed = [parseJobRequest(low), parseJobRequest(high)];

    // Assess
    expect(parsed).toEqual([low, high]);
  });

  it('takes no options as the defaults', () => {
    // Prepare
    const inputs = [undefined, null, {}];

    // Act
    const parsed = inputs.map((i) => parseJobRequest(i));

    // Assess
    expect(parsed).toEqual([{}, {}, {}]);
  });

  it.each([
    ['fileName', ''],
    ['fileName', 'a'.repeat(256)],
    ['processor', 'Json'],
    ['processor', '1json'],
    ['processor', 'a'.repeat(33)],
    ['office', 'Tokyo 1'],
    ['office', 'a'.repeat(33)],
    ['workers', 0],
    ['workers', 101],
    ['workers', 1.5],
    ['workers', '2'],
    ['concurrency', 0],
    ['concurrency', 1001],
    ['concurrency', 2.5],
    ['template', 'Welcome'],
    ['simulateDelayMs', -1],
    ['simulateDelayMs', 60_001],
    ['simulateErrorRate', -0.01],
    ['simulateErrorRate', 1.01],
    ['site', 'kawasaki'],
  ] as const)('refuses %s = %j with a 400 INVALID_REQUEST naming it', (key, value) => {
    // Prepare
    const input = { fileName: 'ok.csv', [key]: value };

    // Act
    const err = refusal(() => parseJobRequest(input));

    // Assess
    expect(err).toBeInstanceOf(BadRequestError);
    expect([err?.code, err?.status]).toEqual(['INVALID_REQUEST', 400]);
    expect(err?.message).toContain(key === 'site' ? 'site' : `${key}: `);
  });

  it('names every problem of a request at once', () => {
    // Prepare
    const input = { workers: 0, processor: 'X' };

    // Act
    const err = refusal(() => parseJobRequest(input));

    // Assess
    expect(err?.message).toMatch(/^Invalid request: .+; .+\.$/);
    expect(err?.message).toContain('workers: ');
    expect(err?.message).toContain('processor: processor names are lower-case letters, digits and dashes');
  });

  it('refuses a request that is not an object, naming the request itself', () => {
    // Prepare
    const input = 'workers=2';

    // Act
    const err = refusal(() => parseJobRequest(input));

    // Assess
    expect(err?.code).toBe('INVALID_REQUEST');
    expect(err?.message).toMatch(/^Invalid request: \(request\): /);
  });
});

describe('Function: parseOrBadRequest', () => {
  it('returns what the schema parsed (its defaults applied), or a 400 for anything else', () => {
    // Prepare
    const schema = z.object({ n: z.number().default(7) });

    // Act
    const ok = parseOrBadRequest(schema, {});
    const bad = refusal(() => parseOrBadRequest(schema, { n: 'x' }));

    // Assess
    expect(ok).toEqual({ n: 7 });
    expect(bad?.message).toMatch(/^Invalid request: n: /);
  });
});

describe('Function: directJobQuery', () => {
  it('takes check=true as a check and check=false or empty as a run, the rest as the job request', () => {
    // Act
    const answers = [
      directJobQuery({ check: 'true', processor: 'mail', workers: '2' }),
      directJobQuery({ check: 'false', processor: 'mail' }),
      directJobQuery({ check: '', fileName: 'a.csv' }),
      directJobQuery(null),
    ];

    // Assess
    expect(answers).toEqual([
      { check: true, input: { processor: 'mail', workers: 2 } },
      { check: false, input: { processor: 'mail' } },
      { check: false, input: { fileName: 'a.csv' } },
      { check: false, input: {} },
    ]);
  });

  it('refuses any other value of check (400), and lists check among the query keys API Gateway passes', () => {
    // Act
    const refused = refusal(() => directJobQuery({ check: 'yes' }));

    // Assess
    expect(refused?.code).toBe('INVALID_REQUEST');
    expect(refused?.message).toContain('check: true or false');
    expect(apiModels().jobRequestQuery).toContain('check');
    expect(Object.keys(apiModels().jobRequest.properties as object)).not.toContain('check');
  });
});

describe('Function: jobRequestFromQuery', () => {
  it('reads the numeric options as numbers when they are written as one', () => {
    // Prepare
    const query = {
      workers: '3',
      concurrency: ' 20 ',
      simulateDelayMs: '1.25',
      simulateErrorRate: '25e-2',
      template: '1e3',
    };

    // Act
    const input = jobRequestFromQuery(query);

    // Assess
    expect(input).toEqual({
      workers: 3,
      concurrency: 20,
      simulateDelayMs: 1.25,
      simulateErrorRate: 0.25,
      template: '1e3',
    });
    expect(jobRequestFromQuery({ workers: '1e1', concurrency: '5E+1' })).toEqual({
      workers: 10,
      concurrency: 50,
    });
  });

  it('keeps anything else as text, so a number-like text option stays text and a bad number is refused', () => {
    // Prepare
    const query = { fileName: '2024', office: '12', workers: '3 workers', concurrency: 'x10' };

    // Act
    const input = jobRequestFromQuery(query);
    const err = refusal(() => parseJobRequest(input));

    // Assess
    expect(input).toEqual({ fileName: '2024', office: '12', workers: '3 workers', concurrency: 'x10' });
    expect(err?.message).toContain('workers: ');
    expect(err?.message).toContain('concurrency: ');
    expect(err?.message).not.toContain('fileName');
    expect(err?.message).not.toContain('office');
  });

  it('reads a negative number as one (and the schema refuses it)', () => {
    // Prepare
    const query = { workers: '-2' };

    // Act
    const input = jobRequestFromQuery(query);

    // Assess
    expect(input).toEqual({ workers: -2 });
    expect(refusal(() => parseJobRequest(input))?.message).toContain('workers: ');
  });

  it('counts empty values as absent, and no query as no options', () => {
    // Prepare
    const query = { workers: '', fileName: undefined, office: 'tokyo' };

    // Act
    const input = jobRequestFromQuery(query);

    // Assess
    expect(input).toStrictEqual({ office: 'tokyo' });
    expect(jobRequestFromQuery(null)).toEqual({});
  });
});

describe('Function: jobRequestFromJsonBody', () => {
  it('parses the JSON body; an empty body is no options', () => {
    // Prepare
    const body = '{"fileName":"a.csv","workers":2}';

    // Act
    const input = jobRequestFromJsonBody(body, null);

    // Assess
    expect(input).toEqual({ fileName: 'a.csv', workers: 2 });
    expect(jobRequestFromJsonBody('', {})).toEqual({});
    expect(jobRequestFromJsonBody(' \n', null)).toEqual({});
  });

  it('refuses options in the query string rather than ignoring them', () => {
    // Prepare
    const query = { workers: '2' };

    // Act
    const err = refusal(() => jobRequestFromJsonBody('{}', query));

    // Assess
    expect([err?.code, err?.status]).toEqual(['INVALID_REQUEST', 400]);
    expect(err?.message).toContain('not in the query string');
  });

  it('refuses a body that is not JSON with a 400', () => {
    // Prepare
    const body = 'fileName=a.csv';

    // Act
    const err = refusal(() => jobRequestFromJsonBody(body, null));

    // Assess
    expect([err?.code, err?.status]).toEqual(['INVALID_REQUEST', 400]);
    expect(err?.message).toContain('must be JSON');
  });
});

describe('Function: validated (the rules that depend on the site)', () => {
  it("takes the site's first office and the default processor when none is asked for", async () => {
    // Prepare
    const req = {};

    // Act
    const v = await validated('sakai', req);

    // Assess
    expect(v).toEqual({ processor: 'report', office: 'main', options: {} });
  });

  it("accepts any of the site's own offices", async () => {
    // Prepare
    const req = { office: 'port' };

    // Act
    const v = await validated('sakai', req);

    // Assess
    expect(v.office).toBe('port');
  });

  it("refuses another site's office, and any office of a site that has none, with 400 UNKNOWN_OFFICE", async () => {
    // Prepare
    const asks: [string, { office?: string }][] = [
      ['kawasaki', { office: 'port' }],
      ['sakai', { office: 'west' }],
      ['nowhere', {}],
    ];

    // Act
    const errors = await Promise.all(
      asks.map(([site, req]) => validated(site, req).catch((e: unknown) => e)),
    );

    // Assess
    for (const err of errors) {
      expect(err).toBeInstanceOf(BadRequestError);
      expect([(err as BadRequestError).code, (err as BadRequestError).status]).toEqual([
        'UNKNOWN_OFFICE',
        400,
      ]);
    }
    expect((errors[0] as Error).message).toBe('Unknown office "port" for site kawasaki. Offices: main.');
  });

  it('passes the simulation switches, concurrency and template to the workers as text, and only those set', async () => {
    // Prepare
    const req = {
      simulateDelayMs: 5,
      simulateErrorRate: 0.25,
      concurrency: 3,
      workers: 2,
      fileName: 'a.csv',
    };

    // Act
    const v = await validated('kawasaki', req);
    const mail = await validated('kawasaki', { processor: 'mail', template: 'notice' });

    // Assess
    expect(v.options).toEqual({ simulateDelayMs: '5', simulateErrorRate: '0.25', concurrency: '3' });
    expect(v).toMatchObject({ workers: 2, fileName: 'a.csv', office: 'main' });
    expect(mail.options).toEqual({ template: 'notice' });
  });

  it("refuses what the processor refuses for the site (a template that is not the site's)", async () => {
    // Prepare
    const req = { processor: 'mail', template: 'missing' };

    // Act
    const err = await validated('sakai', req).catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(BadRequestError);
  });
});

/** Names every object has through its prototype: never a template, processor, site, office or option. */
const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

/** What a request (query string or JSON body, parsed and validated for site sakai) is answered. */
async function answer(input: unknown): Promise<BadRequestError | NotFoundError | undefined> {
  try {
    await validated('sakai', parseJobRequest(input));
    return undefined;
  } catch (err) {
    if (err instanceof BadRequestError || err instanceof NotFoundError) return err;
    throw err;
  }
}

const statusOf = (e: BadRequestError | NotFoundError | undefined) =>
  e instanceof BadRequestError ? e.status : e ? 404 : 200;

describe('A job request naming what an object has through its prototype', () => {
  it.each(PROTOTYPE_NAMES)(
    'is refused with a 4xx and a code for "%s" as a template, processor, office or option',
    async (name) => {
      // Prepare
      const asks: [string, unknown][] = [
        ['template (mail)', jobRequestFromQuery({ processor: 'mail', template: name })],
        ['template (JSON)', JSON.parse(`{"processor":"mail","template":${JSON.stringify(name)}}`)],
        ['processor', jobRequestFromQuery({ processor: name })],
        ['office', jobRequestFromQuery({ office: name })],
        [
          'option (query)',
          jobRequestFromQuery(JSON.parse(`{${JSON.stringify(name)}:"1"}`) as Record<string, string>),
        ],
        ['option (JSON)', JSON.parse(`{${JSON.stringify(name)}:{"polluted":true}}`)],
      ];

      // Act
      const answers = await Promise.all(
        asks.map(async ([what, input]) => [what, await answer(input)] as const),
      );

      // Assess
      for (const [what, e] of answers) {
        expect({ what, status: statusOf(e) }).toEqual({ what, status: 400 });
        expect(e!.code).toMatch(/^(INVALID_REQUEST|UNKNOWN_TEMPLATE|UNKNOWN_PROCESSOR|UNKNOWN_OFFICE)$/);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );
});

describe('The template option', () => {
  it('is refused (400 TEMPLATE_NOT_TAKEN) for a processor that fills no template', async () => {
    // Prepare
    const asks = [
      { processor: 'report', template: 'notice' },
      { template: 'notice' },
      { processor: 'json', template: 'notice' },
    ];

    // Act
    const errors = await Promise.all(asks.map((a) => answer(a)));
    const mail = await answer({ processor: 'mail', template: 'notice' });

    // Assess
    for (const e of errors) {
      expect(e).toBeInstanceOf(BadRequestError);
      expect(e).toMatchObject({ code: 'TEMPLATE_NOT_TAKEN', status: 400 });
    }
    expect(mail).toBeUndefined();
  });
});

describe('Ids echoed in error messages', () => {
  it('are cut to about 100 characters (a 404 for an 8,000-character job id, an unknown key, an unknown processor)', async () => {
    // Prepare
    const long = 'x'.repeat(8000);
    const deps = {} as PipelineDeps;

    // Act
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    const notFound = await failure(getJobView(deps, 'sakai', long));
    const cancel = await failure(cancelJob(deps, 'sakai', long));
    const key = refusal(() => parseJobRequest({ [long]: 1 }));
    const processor = await failure(loadProcessor(`p${'a'.repeat(8000)}`));

    // Assess
    expect(notFound).toBeInstanceOf(NotFoundError);
    for (const e of [notFound, cancel, key, processor]) {
      expect(e!.message.length).toBeLessThan(400);
      expect(e!.message).toContain('x'.repeat(20).replace(/x/g, e === processor ? 'a' : 'x'));
    }
    expect(notFound!.message).toBe(`No job ${'x'.repeat(100)}….`);
  });
});
