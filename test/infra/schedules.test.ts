import { beforeAll, describe, expect, it } from 'vitest';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadConfig, type SiteConfig } from '../../config/index.ts';
import { parseSendAt } from '../../config/schema.ts';
import { acknowledge } from '../../lib/nag.ts';
import { DEPLOYED_RUNTIME } from '../../lib/rowfleet-function.ts';
import { Schedules, sendAtCron } from '../../lib/schedules.ts';
import { cdkJsonContext } from '../helpers/synth.ts';

/**
 * The Schedules construct on its own, with a stand-in target defined in this test only (the reaper's function
 * belongs to another issue). stack.test.ts checks the usage-mail schedules of the real stack.
 */
describe('Stack: schedules', () => {
  const sites = loadConfig().sites;
  let app: App;
  let stack: Stack;
  let template: Template;

  beforeAll(() => {
    // Prepare
    app = new App({ context: cdkJsonContext() });
    stack = new Stack(app, 'SchedulesTest', { env: { account: '123456789012', region: 'ap-northeast-1' } });
    const target = new lambda.Function(stack, 'StandIn', {
      runtime: DEPLOYED_RUNTIME,
      handler: 'index.handler',
      code: lambda.Code.fromInline('export const handler = async () => {};'),
    });
    acknowledge(
      target,
      {
        id: 'AwsSolutions-L1',
        reason: 'Test stand-in for the usage-mail function; only its ARN is used by the schedules.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'Test stand-in for the usage-mail function; its role is not part of what is tested.',
      },
    );
    const schedules = new Schedules(stack, 'Schedules', { stage: 'dev' });

    // Act
    schedules.addSiteSchedules('UsageMail', target, sites);
    schedules.addRecurring('Reaper', target, Duration.minutes(5));
    template = Template.fromStack(stack);
  });

  it('creates exactly one usage-mail schedule per configured site', () => {
    // Assess
    const all = template.findResources('AWS::Scheduler::Schedule', {
      Properties: { Name: Match.stringLikeRegexp('^dev-usagemail-') },
    });
    expect(Object.keys(all)).toHaveLength(sites.length);
    const named = Object.values(all).map(
      (s) => JSON.parse(s.Properties.Target.Input as string).site as string,
    );
    expect(named.sort()).toEqual(sites.map((s) => s.id).sort());
  });

  it.each(loadConfig().sites.map((s) => [s.id, s] as const))(
    'fires %s at 07:00 Asia/Tokyo with input naming the site, retries and a DLQ',
    (id: string, site: SiteConfig) => {
      // Assess
      expect(site.sendAt).toBe('07:00');
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        Name: `dev-usagemail-${id}`,
        GroupName: 'rowfleet-dev',
        ScheduleExpression: 'cron(0 7 * * ? *)',
        ScheduleExpressionTimezone: 'Asia/Tokyo',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Target: {
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StandIn'), 'Arn'] },
          Input: `{"site":"${id}","scheduledTime":"<aws.scheduler.scheduled-time>"}`,
          RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 7200 },
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesDeadLetterQueue'), 'Arn'] },
          },
        },
      });
    },
  );

  it('creates the schedule group before the schedules that name it', () => {
    for (const schedule of Object.values(template.findResources('AWS::Scheduler::Schedule'))) {
      expect(schedule.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^SchedulesGroup/)]));
    }
  });

  it('runs the reaper every 5 minutes', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      Name: 'dev-reaper',
      ScheduleExpression: 'rate(5 minutes)',
      Target: Match.objectLike({ DeadLetterConfig: Match.anyValue() }),
    });
  });

  it('lets the scheduler invoke the target and write to its DLQ, nothing else', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'lambda:InvokeFunction' }),
          Match.objectLike({
            Action: 'sqs:SendMessage',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesDeadLetterQueue'), 'Arn'] },
          }),
        ]),
      },
    });
  });

  it('keeps the schedules DLQ encrypted and TLS-only, and passes cdk-nag', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'dev-schedules-dlq',
      SqsManagedSseEnabled: true,
    });
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
  });

  it('derives the cron fields from sendAt and refuses malformed times', () => {
    expect(sendAtCron(parseSendAt('07:00')!)).toEqual({ hour: '7', minute: '0' });
    expect(sendAtCron(parseSendAt('23:05')!)).toEqual({ hour: '23', minute: '5' });
    expect(parseSendAt('7:00')).toBeUndefined();
    expect(parseSendAt('24:00')).toBeUndefined();
  });
});
