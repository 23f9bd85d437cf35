import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { getStage } from '../../config/index.ts';
import { synthStage, type Synthesized } from '../helpers/synth.ts';

type Resource = { Properties: Record<string, unknown> };

/** The logical ids of the roles whose policies hold a statement with `sid`. */
function rolesWithSid(template: Template, sid: string): string[] {
  const roles: string[] = [];
  for (const p of Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]) {
    const doc = p.Properties.PolicyDocument as { Statement: { Sid?: string }[] };
    if (doc.Statement.some((s) => s.Sid === sid))
      roles.push(...(p.Properties.Roles as { Ref: string }[]).map((r) => r.Ref));
  }
  return roles.sort();
}

/** The launcher's variables of the functions that start workers (upload, reaper). */
function launcherEnvs(template: Template): Record<string, unknown>[] {
  return (Object.values(template.findResources('AWS::Lambda::Function')) as Resource[])
    .map((f) => (f.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables)
    .filter((v): v is Record<string, unknown> => v?.WORKER_SUBNET_IDS !== undefined);
}

describe('Stack: worker network and data encryption (infra.workerNetwork, infra.dataEncryption)', () => {
  describe('dev (defaults: public subnets, SSE-S3)', () => {
    let s: Synthesized;
    beforeAll(() => {
      s = synthStage('dev');
    });
    afterAll(() => s.cleanup());

    it('maps no public IP on launch in any subnet; the launcher asks for one per task', () => {
      const subnets = Object.values(s.template.findResources('AWS::EC2::Subnet')) as Resource[];
      expect(subnets).toHaveLength(2);
      for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
      s.template.resourceCountIs('AWS::EC2::VPCEndpoint', 2); // S3 and DynamoDB gateways only
      s.template.resourceCountIs('AWS::EC2::NatGateway', 0);
      const envs = launcherEnvs(s.template);
      expect(envs).toHaveLength(3); // upload and reaper launch, finalize stops (ListTasks reads the config)
      for (const env of envs) expect(env.WORKER_ASSIGN_PUBLIC_IP).toBe('ENABLED');
    });

    it('keeps SSE-S3 on the data bucket, with no key and no key grant', () => {
      s.template.resourceCountIs('AWS::KMS::Key', 1); // the monitoring topic's key only
      expect(rolesWithSid(s.template, 'DataKey')).toEqual([]);
    });
  });

  describe('private workers, customer-managed data key', () => {
    let s: Synthesized;
    beforeAll(() => {
      // Act: cdk-nag runs in the synth (lib/app.ts): an unacknowledged finding of the options throws here
      s = synthStage('dev', { infra: { workerNetwork: 'private', dataEncryption: 'KMS' } });
    });
    afterAll(() => s.cleanup());

    it('puts the workers in isolated subnets behind interface endpoints, with no public address or route', () => {
      const subnets = Object.values(s.template.findResources('AWS::EC2::Subnet')) as Resource[];
      expect(subnets).toHaveLength(2);
      for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
      s.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
      s.template.resourceCountIs('AWS::EC2::NatGateway', 0);
      const endpoints = Object.values(
        s.template.findResources('AWS::EC2::VPCEndpoint', {
          Properties: { VpcEndpointType: 'Interface', PrivateDnsEnabled: true },
        }),
      ) as Resource[];
      const services = endpoints.map((e) => JSON.stringify(e.Properties.ServiceName));
      for (const svc of ['.sqs', '.ecr.api', '.ecr.dkr', '.logs', '.email'])
        expect(
          services.filter((n) => n.endsWith(`${svc}"`)),
          svc,
        ).toHaveLength(1);
      const envs = launcherEnvs(s.template);
      expect(envs).toHaveLength(3); // upload and reaper launch, finalize stops (ListTasks reads the config)
      for (const env of envs) expect(env.WORKER_ASSIGN_PUBLIC_IP).toBe('DISABLED');
    });

    it('encrypts the data bucket with a rotated customer-managed key and S3 Bucket Keys; the log bucket keeps SSE-S3', () => {
      s.template.hasResourceProperties('AWS::KMS::Key', {
        Description: Match.stringLikeRegexp('data bucket'),
        EnableKeyRotation: true,
      });
      s.template.hasResource('AWS::KMS::Key', {
        Properties: { Description: Match.stringLikeRegexp('data bucket') },
        DeletionPolicy: 'Retain',
      });
      s.template.hasResourceProperties('AWS::S3::Bucket', {
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'data-bucket/' }),
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: {
                SSEAlgorithm: 'aws:kms',
                KMSMasterKeyID: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageDataKey'), 'Arn'] },
              },
            },
          ],
        },
      });
      s.template.hasResourceProperties('AWS::S3::Bucket', {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        LifecycleConfiguration: { Rules: [Match.objectLike({ Id: 'expire-logs' })] },
      });
    });

    it('grants the key, through S3 and for this bucket only, to exactly the roles that read or write objects', () => {
      const roles = rolesWithSid(s.template, 'DataKey');
      expect(roles.map((r) => r.replace(/[0-9A-F]{8}$/, ''))).toEqual([
        'FinalizeFunctionRole',
        'StatusFunctionRole',
        'UploadFunctionRole',
        'WorkersTaskDefinitionTaskRole',
      ]);
      const statement = (actions: string[]) =>
        Match.objectLike({
          Statement: Match.arrayWith([
            {
              Sid: 'DataKey',
              Effect: 'Allow',
              Action: actions.length === 1 ? actions[0] : actions,
              Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageDataKey'), 'Arn'] },
              Condition: {
                StringEquals: { 'kms:ViaService': 's3.ap-northeast-1.amazonaws.com' },
                StringLike: {
                  'kms:EncryptionContext:aws:s3:arn': [
                    { 'Fn::GetAtt': [Match.stringLikeRegexp('^StorageDataBucket'), 'Arn'] },
                    Match.objectLike({ 'Fn::Join': Match.anyValue() }),
                  ],
                },
              },
            },
          ]),
        });
      const policyOf = (rolePrefix: string, actions: string[]) =>
        s.template.hasResourceProperties('AWS::IAM::Policy', {
          PolicyDocument: statement(actions),
          Roles: [{ Ref: Match.stringLikeRegexp(`^${rolePrefix}`) }],
        });
      policyOf('StatusFunctionRole', ['kms:Decrypt']);
      for (const role of ['UploadFunctionRole', 'FinalizeFunctionRole', 'WorkersTaskDefinitionTaskRole'])
        policyOf(role, ['kms:Decrypt', 'kms:GenerateDataKey']);
    });
  });

  it('prod encrypts its data with the customer-managed key; dev and stg keep SSE-S3', () => {
    expect(getStage('prod').infra.dataEncryption).toBe('KMS');
    expect(getStage('dev').infra.dataEncryption).toBe('S3_MANAGED');
    expect(getStage('stg').infra.dataEncryption).toBe('S3_MANAGED');
    for (const name of ['dev', 'stg', 'prod']) expect(getStage(name).infra.workerNetwork).toBe('public');
  });
});
