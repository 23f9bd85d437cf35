import { GetAccountCommand, GetEmailIdentityCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { getStage } from '../../../config/index.ts';
import { formatDoctor, runDoctor, type CheckResult, type DoctorDeps } from '../../../cli/doctor.ts';

const ses = mockClient(SESv2Client);

/** A machine with Docker and an arm64-capable builder, Node 24, credentials: every offline check passes. */
function deps(over: Partial<DoctorDeps> = {}): DoctorDeps {
  return {
    run: (program, args) => {
      if (program !== 'docker') throw new Error(`unexpected ${program}`);
      if (args[0] === 'version') return '27.3.1\n';
      return 'NAME/NODE  DRIVER/ENDPOINT  STATUS   BUILDKIT  PLATFORMS\ndefault *  docker  running  v0.16.0  linux/amd64, linux/arm64\n';
    },
    hasCredentials: async () => true,
    ses: () => new SESv2Client({ region: 'ap-northeast-1' }),
    nodeVersion: '24.11.0',
    ...over,
  };
}

const byId = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.id, r]));

describe('rowfleet doctor', () => {
  beforeEach(() => {
    ses.reset();
    ses
      .on(GetEmailIdentityCommand)
      .resolves({ VerifiedForSendingStatus: true, VerificationStatus: 'SUCCESS' });
    ses.on(GetAccountCommand).resolves({
      SendingEnabled: true,
      ProductionAccessEnabled: true,
      SendQuota: { MaxSendRate: 14, Max24HourSend: 50_000 },
    });
  });

  it('passes a ready machine and account; the checks without an installed client are skipped with their CLI command', async () => {
    // Act
    const r = byId(await runDoctor('dev', deps()));

    // Assess
    for (const id of ['node', 'stage', 'docker', 'buildx', 'credentials', 'ses-identity', 'ses-account'])
      expect(r[id]?.status, id).toBe('ok');
    expect(r['ses-identity']!.title).toBe(`SES identity ${getStage('dev').mail.identity}`);
    expect(ses.commandCalls(GetEmailIdentityCommand)[0]!.args[0].input).toEqual({
      EmailIdentity: getStage('dev').mail.identity,
    });
    expect(r.bootstrap).toMatchObject({
      status: 'skipped',
      detail: expect.stringContaining('@aws-sdk/client-ssm'),
    });
    expect(r.bootstrap!.fix).toContain(
      'aws ssm get-parameter --name /cdk-bootstrap/hnb659fds/version --region ap-northeast-1',
    );
    expect(r['fargate-vcpu']!.fix).toContain('--service-code fargate --quota-code L-3032A538');
    expect(r['lambda-concurrency']!.fix).toContain('aws lambda get-account-settings');
  });

  it('makes the checks without an SDK client through the AWS CLI when it is installed, and judges its answers', async () => {
    // Prepare: an AWS CLI that answers the three read-only calls (a new account: low quotas)
    const calls: string[] = [];
    const answers: Record<string, unknown> = {
      ssm: { Parameter: { Name: '/cdk-bootstrap/hnb659fds/version', Value: '30' } },
      'service-quotas': { Quota: { QuotaCode: 'L-3032A538', Value: 4 } },
      lambda: { AccountLimit: { ConcurrentExecutions: 10 } },
    };
    const run = (program: string, args: readonly string[]) => {
      if (program === 'docker') return deps().run(program, args);
      calls.push(args.join(' '));
      if (args[0] === '--version') return 'aws-cli/2.22.0';
      return JSON.stringify(answers[args[0]!]);
    };

    // Act
    const r = byId(await runDoctor('dev', deps({ run })));
    const notBootstrapped = byId(
      await runDoctor(
        'dev',
        deps({
          run: (program, args) => {
            if (args[0] === 'ssm')
              throw new Error(
                'Command failed\nAn error occurred (ParameterNotFound) when calling GetParameter',
              );
            return run(program, args);
          },
        }),
      ),
    );

    // Assess
    expect(calls).toContain(
      'ssm get-parameter --name /cdk-bootstrap/hnb659fds/version --region ap-northeast-1 --output json',
    );
    expect(r.bootstrap).toMatchObject({ status: 'ok', detail: 'bootstrap version 30 in ap-northeast-1' });
    expect(r['fargate-vcpu']).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('workerBudget.vcpuQuota of dev to 4'),
    });
    expect(r['lambda-concurrency']).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('L-B99A9384'),
    });
    expect(notBootstrapped.bootstrap).toMatchObject({
      status: 'fail',
      fix: 'Run `npx cdk bootstrap aws://<account>/ap-northeast-1 -c stage=dev`.',
    });
  });

  it('reports the SES sandbox, an unverified identity and a missing one, each with what to do', async () => {
    // Prepare
    ses.on(GetAccountCommand).resolves({
      SendingEnabled: true,
      ProductionAccessEnabled: false,
      SendQuota: { MaxSendRate: 1, Max24HourSend: 200 },
    });
    ses
      .on(GetEmailIdentityCommand)
      .resolves({ VerifiedForSendingStatus: false, VerificationStatus: 'PENDING' });

    // Act
    const sandbox = byId(await runDoctor('dev', deps()));
    ses
      .on(GetEmailIdentityCommand)
      .rejects(Object.assign(new Error('not found'), { name: 'NotFoundException' }));
    const missing = byId(await runDoctor('dev', deps()));

    // Assess
    expect(sandbox['ses-account']).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('sandbox'),
      fix: expect.stringContaining('Request production access'),
    });
    expect(sandbox['ses-identity']).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('PENDING'),
    });
    expect(missing['ses-identity']).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('aws sesv2 create-email-identity'),
    });
  });

  it("warns when SES's sending rate is below the stage's mail rate, and fails when sending is disabled", async () => {
    // Prepare
    ses
      .on(GetAccountCommand)
      .resolves({ SendingEnabled: true, ProductionAccessEnabled: true, SendQuota: { MaxSendRate: 5 } });
    const slow = byId(await runDoctor('prod', deps()));
    ses.on(GetAccountCommand).resolves({ SendingEnabled: false, ProductionAccessEnabled: true });

    // Act
    const disabled = byId(await runDoctor('prod', deps()));

    // Assess
    expect(slow['ses-account']).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('mail.ratePerSecond of prod to 5'),
    });
    expect(disabled['ses-account']!.status).toBe('fail');
  });

  it('without credentials runs the offline checks only and says which AWS checks it skipped', async () => {
    // Act
    const results = await runDoctor('dev', deps({ hasCredentials: async () => false }));
    const r = byId(results);

    // Assess
    expect(ses.calls()).toHaveLength(0);
    expect(r.credentials).toMatchObject({
      status: 'skipped',
      fix: expect.stringContaining('rowfleet doctor --stage dev'),
    });
    for (const id of ['ses-identity', 'ses-account', 'bootstrap', 'fargate-vcpu', 'lambda-concurrency'])
      expect(r[id]?.status, id).toBe('skipped');
    expect(r.docker!.status).toBe('ok');
    expect(formatDoctor('dev', results)).toMatch(/4 ok, 0 warnings, 0 failed, 6 skipped$/);
  });

  it('fails without a Docker engine or without an arm64 builder, and says how to get one', async () => {
    // Act
    const noDocker = byId(
      await runDoctor(
        'dev',
        deps({
          run: () => {
            throw new Error('Cannot connect to the Docker daemon');
          },
        }),
      ),
    );
    const noArm = byId(
      await runDoctor(
        'dev',
        deps({
          run: (_p, args) => (args[0] === 'version' ? '27.3.1' : 'default * docker running linux/amd64\n'),
        }),
      ),
    );

    // Assess
    expect(noDocker.docker).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('Docker daemon'),
    });
    expect(noDocker.buildx).toBeUndefined();
    expect(noArm.buildx).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('tonistiigi/binfmt --install arm64'),
    });
  });

  it('warns on a Node older than the deployed one, and refuses the local stage', async () => {
    const r = byId(await runDoctor('dev', deps({ nodeVersion: '20.19.0' })));
    expect(r.node!.status).toBe('warn');
    await expect(runDoctor('local', deps())).rejects.toThrow(/embedded runtime/);
  });
});
