import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AjvDraft04 from 'ajv-draft-04';
import iconv from 'iconv-lite';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../core/jobs/keys.ts';
import { createUploadHandler } from '../../lambdas/upload/handler.ts';
import { localContext } from '../../lambdas/shared/middleware.ts';
import { LocalRuntime } from '../../local/runtime.ts';
import { synthStage } from '../helpers/synth.ts';

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
/** The API's binary media types as CDK synthesizes them for API Gateway. */
let binaryMediaTypes: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-models-'));
  rt = await LocalRuntime.start({ stateDir: dir, reaperSeconds: 0 });
  token = await rt.issueToken('sakai');
  const s = synthStage('dev');
  const models = s.template.findResources('AWS::ApiGateway::Model', {
    Properties: { Name: 'UploadsRequest' },
  });
  binaryMediaTypes = (
    Object.values(s.template.findResources('AWS::ApiGateway::RestApi'))[0] as {
      Properties: { BinaryMediaTypes: string[] };
    }
  ).Properties.BinaryMediaTypes;
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

/**
 * The body of POST /jobs, locally and on AWS: API Gateway (REST) passes a body whose Content-Type is one of the
 * API's binary media types base64-encoded; any other body as a UTF-8 string, decoded (a CP932 file's Japanese
 * then reads as U+FFFD). Each row is sent to the local API and, as API Gateway would pass it under the
 * synthesized binaryMediaTypes, to the upload handler itself: both must store the bytes sent, or answer 415.
 */
const mediaRows: [string | undefined, 'stored' | 'refused'][] = [
  ['text/csv', 'stored'],
  ['application/octet-stream', 'stored'],
  ['application/vnd.ms-excel', 'stored'],
  ['application/x-www-form-urlencoded', 'refused'],
  ['text/plain', 'refused'],
  ['text/plain; charset=shift_jis', 'refused'],
  ['application/json', 'refused'],
  [undefined, 'refused'],
];

const cp932 = iconv.encode('id,name,city\r\n1,山田太郎,東京都\r\n2,佐藤花子,大阪府\r\n', 'cp932');

type Answer = { status: number; code?: string; stored?: Buffer };

async function answer(status: number, text: string): Promise<Answer> {
  const parsed = JSON.parse(text) as { token?: string; error?: { code: string } };
  if (status !== 202) return { status, code: parsed.error?.code };
  return { status, stored: await rt.deps.objects.bytes(keys.source('sakai', parsed.token!)) };
}

/** API Gateway's choice for a Content-Type: base64 when its media type is one of the API's binary types. */
function awsPassesBinary(type: string | undefined): boolean {
  return binaryMediaTypes.includes((type ?? '').split(';')[0]!.trim().toLowerCase());
}

describe('POST /jobs body: the bytes sent, or 415, locally and on AWS alike', () => {
  it.each(mediaRows)('Content-Type %s: %s', async (type, expected) => {
    // Prepare
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      ...(type ? { 'content-type': type } : {}),
    };
    const binary = awsPassesBinary(type);
    const event = {
      httpMethod: 'POST',
      resource: '/jobs',
      path: '/jobs',
      headers: type ? { 'Content-Type': type } : {},
      queryStringParameters: { processor: 'json' },
      body: cp932.toString(binary ? 'base64' : 'utf8'),
      isBase64Encoded: binary,
      requestContext: { authorizer: { site: 'sakai' }, httpMethod: 'POST', resourcePath: '/jobs' },
    } as unknown as APIGatewayProxyEvent;

    // Act
    const res = await fetch(`${rt.apiUrl}/jobs?processor=json`, {
      method: 'POST',
      headers,
      body: new Uint8Array(cp932),
    });
    const local = await answer(res.status, await res.text());
    const r = (await createUploadHandler(rt.deps)(event, localContext('upload'))) as {
      statusCode: number;
      body: string;
    };
    const aws = await answer(r.statusCode, r.body);

    // Assess
    expect(local).toEqual(aws);
    if (expected === 'stored') expect(local).toEqual({ status: 202, stored: cp932 });
    else expect(local).toEqual({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
  });
});
