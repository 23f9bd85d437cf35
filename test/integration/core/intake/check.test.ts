/**
 * POST /jobs?check=true through the local API in front of the real upload handler, on the embedded emulators: the
 * file read as the split reads it, nothing created (no job item, object, queue, worker, mail or usage count), the
 * first records rendered exactly as the run sends them, and an estimate.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../../../config/routes.ts';
import { dynamoClient, s3Client } from '../../../../core/aws/clients.ts';
import type { CheckAnswer } from '../../../../core/intake/check.ts';
import { startDirectJob } from '../../../../core/intake/operations.ts';
import { finalizeJob } from '../../../../core/finalize/finalize.ts';
import { jsonProcessor } from '../../../../core/processors/json.ts';
import { RECORD_HEADER } from '../../../../core/processors/mail.ts';
import { PREVIEW_TOKEN } from '../../../../core/processors/types.ts';
import { runLaunchedWorkers } from '../../../helpers/pipeline-jobs.ts';
import { localContext } from '../../../../lambdas/shared/middleware.ts';
import { createUploadHandler } from '../../../../lambdas/upload/handler.ts';
import { LocalApi } from '../../../../local/api-gateway.ts';
import { fetchEmulatorPage } from '../../../../local/emulator-gate.ts';
import { RecordingLauncher, TEST_STAGE, testDeps, useTestAws } from '../../../helpers/aws.ts';

const aws = useTestAws();
const launcher = new RecordingLauncher();
let api: LocalApi;

interface StoredMail {
  from: string;
  destination: { to: string[] };
  subject: string;
  body: { text?: string; html?: string };
  headers?: { name: string; value: string }[];
}

beforeAll(async () => {
  const upload = createUploadHandler(testDeps(aws, { launcher })) as (
    e: APIGatewayProxyEvent,
    c: ReturnType<typeof localContext>,
  ) => Promise<APIGatewayProxyResult>;
  // The caller's site is its bearer token here (the authorizer's answer, without a token table).
  api = new LocalApi(
    API_ROUTES.filter((r) => r.function === 'upload').map((r) => ({
      method: r.method,
      resource: r.path,
      auth: r.auth,
      handler: (e: APIGatewayProxyEvent) => upload(e, localContext('check-upload')),
    })),
    async (authorization) => authorization?.replace(/^Bearer /, ''),
    TEST_STAGE,
  );
  await api.listen();
});

afterAll(async () => {
  await api?.close();
});

/** An order export of `rows` rows for the `mail` processor; rows in `bad` have no valid address. */
function exportOf(site: string, rows: number, bad: readonly number[], columns?: readonly string[]): string {
  const all = ['id', '氏名', '品目', '数量', '受注日', 'email'];
  const keep = all.map((c) => !columns || columns.includes(c));
  const lines = [all.filter((_, i) => keep[i]).join(',')];
  for (let n = 1; n <= rows; n++) {
    const email = bad.includes(n) ? `宛先なし-${n}` : `${site}-${n}@example.com`;
    const row = [
      `${site.toUpperCase()}-${n}`,
      `客${n} 様方`,
      '鋼板',
      String(n),
      `2026-11-${(n % 28) + 1}`,
      email,
    ];
    lines.push(row.filter((_, i) => keep[i]).join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

async function post(site: string, query: string, body: Buffer | string, type = 'text/csv') {
  const res = await fetch(`${api.url}/jobs?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${site}`, 'content-type': type },
    body,
  });
  return { status: res.status, body: (await res.json()) as CheckAnswer & { error?: { code: string } } };
}

/** Everything a job leaves behind: objects, items, queues besides the stage's own, mails the SES took. */
async function footprint() {
  const objects = await s3Client().send(new ListObjectsV2Command({ Bucket: aws.bucket }));
  const items = await dynamoClient().send(new ScanCommand({ TableName: aws.table }));
  const queues = await testDeps(aws).queues.listWithTags(`${TEST_STAGE}-report-`);
  const mails = await sesStore();
  return {
    objects: objects.KeyCount ?? 0,
    items: items.Count ?? 0,
    queues: queues.length,
    mails: mails.length,
  };
}

async function sesStore(): Promise<StoredMail[]> {
  const page = await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`);
  return ((await page.json()) as { emails: StoredMail[] }).emails;
}

describe('POST /jobs?check=true', { timeout: 60_000 }, () => {
  it('names the template column a CP932 mail file lacks (ok false, no samples) and creates nothing at all', async () => {
    // Prepare: 500 rows from Japanese Excel (CP932) without 受注日, which the site's template names
    const text = exportOf('sakai', 500, [10, 50, 100, 200, 400], ['id', '氏名', '品目', '数量', 'email']);
    const before = await footprint();

    // Act
    const r = await post(
      'sakai',
      'check=true&processor=mail&fileName=orders.csv',
      iconv.encode(text, 'cp932'),
    );
    const after = await footprint();

    // Assess
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      check: true,
      site: 'sakai',
      processor: 'mail',
      template: 'notice',
      fileName: 'orders.csv',
      encoding: 'cp932',
      delimiter: ',',
      header: ['id', '氏名', '品目', '数量', 'email'],
      records: 500,
      valid: 500,
      ok: false,
      rejected: { count: 0, first: [] },
      needs: { missing: ['受注日'] },
      samples: [],
    });
    expect(r.body.problems).toEqual([
      {
        code: 'PROCESSOR_FIELDS_MISSING',
        message: expect.stringContaining('"受注日"') as string,
        line: 1,
        columns: ['受注日'],
      },
    ]);
    expect([...r.body.needs.columns].sort()).toEqual(
      ['email', 'id', '受注日', '品目', '数量', '氏名'].sort(),
    );
    expect(before).toEqual({ objects: 0, items: 0, queues: 0, mails: 0 });
    expect(after).toEqual(before);
    expect(launcher.launches).toEqual([]);
  });

  it('renders a good file’s first three mails exactly as the run sends them, with an estimate, creating nothing', async () => {
    // Prepare: the same export with every column; 5 addresses invalid, none among the first three
    const body = iconv.encode(exportOf('sakai', 500, [10, 50, 100, 200, 400]), 'cp932');
    const before = await footprint();

    // Act: the check, then the run of the same file
    const r = await post('sakai', 'check=true&processor=mail', body);
    const after = await footprint();
    const deps = testDeps(aws, { launcher });
    const view = await startDirectJob(deps, 'sakai', body, { processor: 'mail' });
    await runLaunchedWorkers(deps, launcher);
    const finished = await finalizeJob(deps, 'sakai', view.token);
    const sent = new Map(
      (await sesStore()).map((m) => [m.headers?.find((h) => h.name === RECORD_HEADER)?.value, m]),
    );

    // Assess: nothing created by the check; what it shows is what was sent
    expect(r.status).toBe(200);
    expect(after).toEqual(before);
    expect(r.body).toMatchObject({ ok: true, problems: [], records: 500, valid: 500, encoding: 'cp932' });
    expect(r.body.needs.missing).toEqual([]);
    expect(r.body.samples.map((s) => [s.record, s.line])).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
    expect(finished.state).toBe('PARTIAL');
    for (const s of r.body.samples) {
      const mail = sent.get(`sakai#${view.token}#${s.record}`);
      expect(mail, `record ${s.record} was sent`).toBeDefined();
      expect(s.output).toEqual({
        kind: 'mail',
        from: mail!.from,
        to: mail!.destination.to[0],
        subject: mail!.subject,
        text: mail!.body.text,
        html: mail!.body.html,
      });
    }
    expect(r.body.samples[0]!.output).toMatchObject({ subject: '【堺】ご注文 SAKAI-1 のご案内' });
    const e = r.body.estimate;
    expect(e.workers).toBeGreaterThanOrEqual(1);
    expect(e.workersNow).toBeGreaterThanOrEqual(1);
    expect(e.seconds).toBeGreaterThan(0);
    expect(e.usd).toBeGreaterThan(0);
    expect(e.jpy).toBeCloseTo(e.usd * e.jpyPerUsd, 1);
    expect(e).toMatchObject({ region: 'ap-northeast-1', jpyPerUsd: 150, pricesAsOf: '2026-09' });
    expect(e.breakdown.map((b) => b.service)).toEqual(['fargate', 'lambda', 'sqs', 'dynamodb', 's3', 'ses']);
    expect(e.breakdown.every((b) => b.usd > 0 && b.basis.length > 0)).toBe(true);
    // One mail per valid record at $0.10 per 1,000.
    expect(e.breakdown.find((b) => b.service === 'ses')!.usd).toBeCloseTo(0.05, 6);
  });

  it('shows a refused record’s code among the samples and the rejected records with their lines', async () => {
    // Prepare: record 2 has no valid address; record 4 has a field too many (rejected by the split)
    const lines = exportOf('kawasaki', 6, [2]).split('\r\n');
    lines[4] = `${lines[4]},余分`;

    // Act
    const r = await post('kawasaki', 'check=true&processor=mail', lines.join('\r\n'));

    // Assess
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, records: 6, valid: 5, encoding: 'utf-8' });
    expect(r.body.rejected).toEqual({
      count: 1,
      first: [{ record: 4, line: 5, code: 'COLUMN_COUNT', message: expect.any(String) as string }],
    });
    expect(r.body.samples.map((s) => [s.record, s.output.kind])).toEqual([
      [1, 'mail'],
      [2, 'error'],
      [3, 'mail'],
    ]);
    expect(r.body.samples[1]!.output).toMatchObject({ code: 'MAIL_INVALID_ADDRESS' });
  });

  it('shows the json processor’s entries as its process writes them; no template for it', async () => {
    // Prepare
    const csv = 'id,name\r\n1,山田\r\n2,"鈴木, 花子"\r\n3,x\r\n4,y\r\n';

    // Act
    const r = await post('sakai', 'check=true&processor=json', csv);

    // Assess
    expect(r.status).toBe(200);
    expect(r.body.template).toBeUndefined();
    expect(r.body.needs).toEqual({ columns: [], missing: [] });
    const expected = [1, 2, 3].map((n) =>
      jsonProcessor.process(
        {
          n,
          line: n + 1,
          fields: csv.split('\r\n')[n]!.startsWith('2')
            ? ['2', '鈴木, 花子']
            : csv.split('\r\n')[n]!.split(','),
        },
        { site: 'sakai', token: PREVIEW_TOKEN, header: ['id', 'name'] },
      ),
    );
    expect(r.body.samples.map((s) => s.output)).toEqual(
      expected.map((outs) => ({
        kind: 'entries',
        entries: outs.map((o) => ({ name: o.name, contentType: 'application/json', text: o.data })),
      })),
    );
  });

  it('answers a file rejected as a whole with its code and line, ok false', async () => {
    // Act
    const r = await post('sakai', 'check=true&processor=json', 'a,b\r\n1,"open\r\n2,3\r\n');

    // Assess
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(false);
    expect(r.body.problems.map((p) => [p.code, p.line])).toEqual([['UNTERMINATED_QUOTE', 2]]);
    expect(r.body.samples).toEqual([]);
  });

  it('refuses what POST /jobs refuses: 400 for a bad option or check value, 415 for a body of another type', async () => {
    // Act
    const unknown = await post('sakai', 'check=true&colour=red', 'a\r\n1\r\n');
    const badFlag = await post('sakai', 'check=yes', 'a\r\n1\r\n');
    const template = await post('sakai', 'check=true&processor=json&template=notice', 'a\r\n1\r\n');
    const text = await post('sakai', 'check=true', 'a\r\n1\r\n', 'text/plain');
    const after = await footprint();

    // Assess
    expect([unknown.status, unknown.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
    expect([badFlag.status, badFlag.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
    expect([template.status, template.body.error?.code]).toEqual([400, 'TEMPLATE_NOT_TAKEN']);
    expect([text.status, text.body.error?.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    expect(after.queues).toBe(0);
  });
});
