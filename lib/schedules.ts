import { Duration, Stack, TimeZone } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { SiteConfig } from '../config/index.ts';
import { resourceNames } from '../config/names.ts';
import { acknowledge, acknowledgeFindings } from './nag.ts';

/** Minute and hour fields of a cron expression from a site's parsed local send time (07:00 → minute 0, hour 7). */
export function sendAtCron(t: SiteConfig['sendAtTime']): { readonly minute: string; readonly hour: string } {
  return { hour: String(t.hour), minute: String(t.minute) };
}

function checkTimeZone(site: SiteConfig): TimeZone {
  try {
    new Intl.DateTimeFormat('en', { timeZone: site.timeZone });
  } catch {
    throw new Error(
      `site ${site.id}: unknown time zone "${site.timeZone}" (use an IANA name such as Asia/Tokyo)`,
    );
  }
  return TimeZone.of(site.timeZone);
}

export interface SchedulesProps {
  readonly stage: string;
}

/** How often a schedule retries a failed invocation, and for how long an invocation is still worth making. */
export const SCHEDULE_RETRY = { retryAttempts: 5, maxEventAge: Duration.hours(2) } as const;

/**
 * The stage's EventBridge Scheduler schedules: one group, one dead-letter queue for invocations that fail
 * after the retries, and the targets that plug in — the daily usage mail (one schedule per site, in the
 * site's own time zone, input naming the site) and recurring jobs such as the reaper.
 */
export class Schedules extends Construct {
  readonly group: scheduler.ScheduleGroup;
  readonly deadLetterQueue: sqs.Queue;
  /** The role the scheduler assumes to invoke the targets and write to the DLQ. */
  readonly role: iam.Role;
  private readonly stage: string;
  private invokeAcknowledged = false;

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    this.stage = props.stage;
    const names = resourceNames(props.stage);
    this.group = new scheduler.ScheduleGroup(this, 'Group', { scheduleGroupName: names.scheduleGroup });
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: names.schedulesDlq,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.role = new iam.Role(this, 'Role', {
      description: `Rowfleet ${props.stage}: EventBridge Scheduler invokes the scheduled functions`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    });
    acknowledge(this.deadLetterQueue, {
      id: 'AwsSolutions-SQS3',
      reason:
        'This is the dead-letter queue of the schedules; a dead-letter queue of its own would never be read.',
    });
  }

  /**
   * One schedule per site: `cron(<mm> <hh> * * ? *)` from the site's `sendAt` in the site's `timeZone`, input
   * `{"site":"<id>","scheduledTime":"<aws.scheduler.scheduled-time>"}`. The site comes only from this input.
   */
  addSiteSchedules(id: string, target: lambda.IFunction, sites: readonly SiteConfig[]): scheduler.Schedule[] {
    const scope = new Construct(this, id);
    return sites.map((site) => {
      const { minute, hour } = sendAtCron(site.sendAtTime);
      return this.inGroup(
        new scheduler.Schedule(scope, `Site-${site.id}`, {
          scheduleName: `${this.stage}-${id.toLowerCase()}-${site.id}`,
          description: `Rowfleet ${this.stage}: ${id} for site ${site.id} at ${site.sendAt} ${site.timeZone}`,
          scheduleGroup: this.group,
          schedule: scheduler.ScheduleExpression.cron({
            minute,
            hour,
            day: '*',
            month: '*',
            year: '*',
            timeZone: checkTimeZone(site),
          }),
          target: new targets.LambdaInvoke(target, {
            input: scheduler.ScheduleTargetInput.fromObject({
              site: site.id,
              scheduledTime: scheduler.ContextAttribute.scheduledTime,
            }),
            deadLetterQueue: this.deadLetterQueue,
            role: this.role,
            ...SCHEDULE_RETRY,
          }),
        }),
      );
    });
  }

  /** A schedule at a fixed rate (e.g. the reaper every 5 minutes), input `{"scheduledTime": …}`. */
  addRecurring(id: string, target: lambda.IFunction, rate: Duration): scheduler.Schedule {
    return this.inGroup(
      new scheduler.Schedule(this, id, {
        scheduleName: `${this.stage}-${id.toLowerCase()}`,
        description: `Rowfleet ${this.stage}: ${id} every ${rate.toHumanString()}`,
        scheduleGroup: this.group,
        schedule: scheduler.ScheduleExpression.rate(rate),
        target: new targets.LambdaInvoke(target, {
          input: scheduler.ScheduleTargetInput.fromObject({
            scheduledTime: scheduler.ContextAttribute.scheduledTime,
          }),
          deadLetterQueue: this.deadLetterQueue,
          role: this.role,
          // A late reaper run is useless: the next one is minutes away.
          retryAttempts: 2,
          maxEventAge: Duration.minutes(5),
        }),
      }),
    );
  }

  /** The group is referenced by its name, which carries no dependency: create it before the schedules. */
  private inGroup(schedule: scheduler.Schedule): scheduler.Schedule {
    schedule.node.addDependency(this.group);
    if (!this.invokeAcknowledged) {
      this.invokeAcknowledged = true;
      acknowledgeFindings(this.role, {
        rule: 'AwsSolutions-IAM5',
        match: /^Resource::<[A-Za-z0-9]+\.Arn>:\*$/,
        reason:
          'CDK grants lambda:InvokeFunction on each scheduled function and its versions/aliases (<function ARN>:*); nothing beyond the functions added to these schedules.',
      });
    }
    return schedule;
  }
}
