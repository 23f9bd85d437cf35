import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AjvDraft04 from 'ajv-draft-04';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRuntime } from '../../local/runtime.ts';
import { synthStage } from '../infra/support.ts';

/**
 * One job-request schema, the same answer locally and on AWS: every row is sent to POST /uploads of the local API
 * (the real upload handler) and validated against the request model that CDK synthesizes for API Gateway. On AWS
 * a body the model refuses never reaches the handler (API Gateway answers 400 INVALID_REQUEST through its
 * BAD_REQUEST_BODY gateway response); a body it accepts gets the handler's answer. The two must agree on every row.
 */
const rows: [string, unknown, 'accept' | 'refuse'][] = [
  ['an empty object', {}, 'accept'],
  ['a file name', { fileName: 'clients.csv' }, 'accept'],
  [
    'every option',
    {
      fileName: 'a.csv',
      processor: 'json',
      office: 'port',
      workers: 3,
      simulateDelayMs: 5,
      simulateErrorRate: 0.5,
    },
    'accept',
  ],
  ['the simulate options (refused by the hand-written model before)', { simulateDelayMs: 100 }, 'accept'],
  ['an office (refused by the hand-written model before)', { office: 'main' }, 'accept'],
  ['an unknown key', { fileName: 'a.csv', site: 'kawasaki' }, 'refuse'],
  ['an empty file name', { fileName: '' }, 'refuse'],
  ['a 256-character file name', { fileName: 'x'.repeat(256) }, 'refuse'],
  ['a 500 KB file name', { fileName: 'x'.repeat(500_000) }, 'refuse'],
  ['workers as text', { workers: '2' }, 'refuse'],
  ['workers 0', { workers: 0 }, 'refuse'],
  ['workers 101', { workers: 101 }, 'refuse'],
  ['workers 1.5', { workers: 1.5 }, 'refuse'],
  ['a negative delay', { simulateDelayMs: -1 }, 'refuse'],
  ['a delay above a minute', { simulateDelayMs: 60_001 }, 'refuse'],
  ['an error rate above 1', { simulateErrorRate: 1.5 }, 'refuse'],
  ['an upper-case processor', { processor: 'JSON' }, 'refuse'],
  ['an office id with a slash', { office: 'a/b' }, 'refuse'],
  ['an array', [], 'refuse'],
  ['a number', 42, 'refuse'],
];

let dir = '';
let rt: LocalRuntime;
let token = '';
let validate: (body: unknown) => boolean;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-models-'));
  rt = await LocalRuntime.start({ stateDir: dir, reaperSeconds: 0 });
  token = await rt.issueToken('sakai');
  const s = synthStage('dev');
  const models = s.template.findResources('AWS::ApiGateway::Model', {
    Properties: { Name: 'UploadsRequest' },
  });
  s.cleanup();
  const schema = (Object.values(models)[0] as { Properties: { Schema: object } }).Properties.Schema;
  // ajv-draft-04 is CommonJS: its class is the module and its `default` alike.
  validate = new AjvDraft04.default({ strict: false }).compile(schema);
});

afterAll(async () => {
  await rt?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function uploads(body: unknown): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${rt.apiUrl}/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const parsed = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: parsed.error?.code };
}

describe('Job request: the API Gateway model and the handler answer alike', () => {
  it.each(rows)('%s', async (_what, body, expected) => {
    // Act
    const local = await uploads(body);
    const modelAccepts = validate(body);
    // On AWS: the model first, then the handler.
    const aws = modelAccepts ? local : { status: 400, code: 'INVALID_REQUEST' };

    // Assess
    expect(local).toEqual(aws);
    expect(local.status === 201 ? 'accept' : 'refuse').toBe(expected);
    if (expected === 'refuse') expect(local).toEqual({ status: 400, code: 'INVALID_REQUEST' });
  });

  it('refuses malformed JSON and options in the query string with the same code', async () => {
    // Act
    const malformed = await fetch(`${rt.apiUrl}/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"fileName":',
    });
    const query = await fetch(`${rt.apiUrl}/uploads?fileName=a.csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });

    // Assess
    expect([malformed.status, ((await malformed.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'INVALID_REQUEST',
    ]);
    expect([query.status, ((await query.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'INVALID_REQUEST',
    ]);
  });
});
