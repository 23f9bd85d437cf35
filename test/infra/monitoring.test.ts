import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../../config/index.ts';
import {
  METRIC_NAMESPACE as CORE_NAMESPACE,
  METRICS,
  publishMetrics,
  publishSiteMetrics,
} from '../../core/shared/metrics.ts';
import {
  CUSTOM_METRICS,
  METRIC_NAMESPACE,
  SITE_METRICS,
  customMetricDimensions,
  siteMetricDimensions,
} from '../../lib/metrics.ts';
import { joinedText, synthStage, type Synthesized } from '../helpers/synth.ts';

// These tests read the EMF lines core really prints: metrics on, though test/setup.ts turns them off everywhere.
vi.hoisted(() => {
  delete process.env.POWERTOOLS_METRICS_DISABLED;
});

type MetricRow = [string, string, ...unknown[]];

/** Metrics published with the site as a dimension (usage mails). */
const perSite = (name: string) => (SITE_METRICS as readonly string[]).includes(name);

/** Every metric the dashboard draws, as [namespace, name, dim1, value1, …]. */
function dashboardMetrics(template: Template): MetricRow[] {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  const body = JSON.parse(joinedText(dashboard!.Properties.DashboardBody)) as {
    widgets: { properties: { metrics?: unknown[][] } }[];
  };
  return body.widgets
    .flatMap((w) => w.properties.metrics ?? [])
    .map((row) => row.filter((x) => typeof x !== 'object') as MetricRow);
}

interface AlarmMetric {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: unknown;
}

/** The metric of an alarm, whether CDK wrote it flat (MetricName) or as a one-element Metrics array (labelled). */
function alarmMetric(alarm: AlarmResource): AlarmMetric {
  const p = alarm.Properties;
  if (typeof p.MetricName === 'string') {
    return { namespace: p.Namespace as string, name: p.MetricName, dimensions: p.Dimensions };
  }
  const [m] = p.Metrics as {
    MetricStat: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown } };
  }[];
  return {
    namespace: m!.MetricStat.Metric.Namespace,
    name: m!.MetricStat.Metric.MetricName,
    dimensions: m!.MetricStat.Metric.Dimensions,
  };
}

interface AlarmResource {
  readonly Properties: Record<string, unknown>;
}

function allAlarms(template: Template): AlarmResource[] {
  return Object.values(template.findResources('AWS::CloudWatch::Alarm')) as AlarmResource[];
}

function alarmNamed(template: Template, name: string): AlarmResource {
  const found = allAlarms(template).filter((a) => a.Properties.AlarmName === name);
  expect(found, `alarm ${name}`).toHaveLength(1);
  return found[0]!;
}

describe('Stack: Rowfleet-dev monitoring', () => {
  let s: Synthesized;
  let template: Template;

  beforeAll(() => {
    // Prepare, Act
    s = synthStage('dev');
    template = s.template;
  });
  afterAll(() => s.cleanup());

  describe('custom metrics', () => {
    it('names in lib/metrics.ts only metrics of the core/shared/metrics.ts catalogue, in its namespace', () => {
      // Assess
      expect(METRIC_NAMESPACE).toBe(CORE_NAMESPACE);
      for (const name of [...CUSTOM_METRICS, ...SITE_METRICS]) expect(Object.keys(METRICS)).toContain(name);
    });

    it('draws on the dashboard only catalogued metrics, with the dimensions the code publishes', () => {
      // Act
      const custom = dashboardMetrics(template).filter(([ns]) => ns === METRIC_NAMESPACE);

      // Assess
      expect(custom.length).toBeGreaterThanOrEqual(12);
      for (const [, name, ...dims] of custom) {
        expect(Object.keys(METRICS)).toContain(name);
        const drawnDims = Object.fromEntries(
          Array.from({ length: dims.length / 2 }, (_, i) => [dims[2 * i], dims[2 * i + 1]]),
        );
        if (perSite(name)) expect(drawnDims).toEqual(siteMetricDimensions('dev', String(drawnDims.site)));
        else expect(dims).toEqual(Object.entries(customMetricDimensions('dev')).flat());
      }
      const drawn = new Set(custom.map(([, name]) => name));
      expect([...drawn].sort()).toEqual([...CUSTOM_METRICS, ...SITE_METRICS].sort());
    });

    it('draws MailsSent and MailsFailed for every configured site, one line per site', () => {
      // Prepare
      const sites = loadConfig()
        .sites.map((s) => s.id)
        .sort();

      // Act
      const rows = dashboardMetrics(template).filter(
        ([ns, name]) => ns === METRIC_NAMESPACE && perSite(name),
      );
      const sitesOf = (metric: string) =>
        rows
          .filter(([, name]) => name === metric)
          .map(([, , ...dims]) => String(dims[dims.indexOf('site') + 1]))
          .sort();

      // Assess
      expect(sitesOf('MailsSent')).toEqual(sites);
      expect(sitesOf('MailsFailed')).toEqual(sites);
    });

    it('matches what publishSiteMetrics really emits (dimensions service, stage and site)', () => {
      // Prepare
      const lines: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });

      // Act
      try {
        publishSiteMetrics('dev', 'kawasaki', { MailsSent: 1 });
      } finally {
        spy.mockRestore();
      }

      // Assess
      const emf = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => '_aws' in l);
      const directive = (emf!._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] })
        .CloudWatchMetrics[0]!;
      expect(directive.Namespace).toBe(METRIC_NAMESPACE);
      expect([...directive.Dimensions[0]!].sort()).toEqual(
        Object.keys(siteMetricDimensions('dev', 'kawasaki')).sort(),
      );
      for (const [k, v] of Object.entries(siteMetricDimensions('dev', 'kawasaki'))) expect(emf![k]).toBe(v);
      expect(emf!.MailsSent).toBe(1);
    });

    it('alarms only on catalogued metrics', () => {
      // Act
      const alarms = allAlarms(template).map(alarmMetric);
      const custom = alarms.filter((a) => a.namespace === METRIC_NAMESPACE);

      // Assess
      expect(custom.length).toBeGreaterThan(0);
      for (const a of custom) {
        expect(Object.keys(METRICS)).toContain(a.name);
        const dims = Object.fromEntries(
          (a.dimensions as { Name: string; Value: string }[]).map((d) => [d.Name, d.Value]),
        );
        if (perSite(a.name)) expect(dims).toEqual(siteMetricDimensions('dev', String(dims.site)));
        else expect(dims).toEqual(customMetricDimensions('dev'));
      }
    });

    it('matches what publishMetrics really emits (EMF namespace and dimension set)', () => {
      // Prepare
      const lines: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });

      // Act
      try {
        publishMetrics('dev', { JobsSucceeded: 1 });
      } finally {
        spy.mockRestore();
      }

      // Assess
      const emf = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => '_aws' in l);
      expect(emf).toBeDefined();
      const directive = (emf!._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] })
        .CloudWatchMetrics[0]!;
      expect(directive.Namespace).toBe(METRIC_NAMESPACE);
      expect(directive.Dimensions).toEqual([Object.keys(customMetricDimensions('dev'))]);
      for (const [k, v] of Object.entries(customMetricDimensions('dev'))) expect(emf![k]).toBe(v);
    });
  });

  describe('alarms', () => {
    const opsActions = [{ Ref: expect.stringMatching(/^MonitoringOpsTopic/) }];

    it('alarms the ops topic when either dead-letter queue holds a message', () => {
      for (const [name, queue] of [
        ['rowfleet-dev-dlq-not-empty', /^StorageDeadLetterQueue/],
        ['rowfleet-dev-schedules-dlq-not-empty', /^SchedulesDeadLetterQueue/],
      ] as const) {
        const alarm = alarmNamed(template, name);
        expect(alarmMetric(alarm)).toEqual({
          namespace: 'AWS/SQS',
          name: 'ApproximateNumberOfMessagesVisible',
          dimensions: [
            { Name: 'QueueName', Value: { 'Fn::GetAtt': [expect.stringMatching(queue), 'QueueName'] } },
          ],
        });
        expect(alarm.Properties).toMatchObject({
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          AlarmActions: opsActions,
        });
      }
    });

    it('alarms on errors of upload, status, finalize, usage-mail, reaper and console, but not of the authorizer', () => {
      const alarms = allAlarms(template).filter((a) => alarmMetric(a).namespace === 'AWS/Lambda');
      const names = alarms.map((a) => a.Properties.AlarmName as string).sort();
      expect(names).toEqual([
        'rowfleet-dev-console-errors',
        'rowfleet-dev-finalize-errors',
        'rowfleet-dev-reaper-errors',
        'rowfleet-dev-status-errors',
        'rowfleet-dev-upload-errors',
        'rowfleet-dev-usage-mail-errors',
      ]);
      for (const a of alarms) {
        expect(alarmMetric(a).name).toBe('Errors');
        expect(a.Properties.AlarmActions).toEqual(opsActions);
      }
    });

    it('alarms on API 5xx and on stuck finalize/upload-event queues', () => {
      const api = alarmNamed(template, 'rowfleet-dev-api5xx');
      expect(alarmMetric(api)).toEqual({
        namespace: 'AWS/ApiGateway',
        name: '5XXError',
        dimensions: [{ Name: 'ApiName', Value: 'rowfleet-dev' }],
      });
      expect(api.Properties.AlarmActions).toEqual(opsActions);
      for (const name of ['rowfleet-dev-finalize-backlog', 'rowfleet-dev-upload-events-backlog']) {
        const alarm = alarmNamed(template, name);
        expect(alarmMetric(alarm).name).toBe('ApproximateAgeOfOldestMessage');
        expect(alarm.Properties).toMatchObject({ Threshold: 900, AlarmActions: opsActions });
      }
    });

    it('reports failed jobs on the job-outcome topic', () => {
      const alarm = alarmNamed(template, 'rowfleet-dev-jobs-failed');
      expect(alarmMetric(alarm)).toMatchObject({ namespace: 'Rowfleet', name: 'JobsFailed' });
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^MonitoringJobsTopic/) }]);
    });

    it("alarms per site when one of its jobs waits for a worker longer than the budget's wait alarm", () => {
      // Prepare
      const sites = loadConfig().sites.map((s) => s.id);

      // Act, Assess: one alarm per configured site, on the reaper's backlog figure of that site
      for (const site of sites) {
        const name = `rowfleet-dev-worker-wait-${site}`;
        const alarm = alarmNamed(template, name);
        expect(alarmMetric(alarm)).toMatchObject({ namespace: 'Rowfleet', name: 'BacklogOldestWait' });
        expect(JSON.stringify(alarm.Properties)).toContain(`"Value":"${site}"`);
        expect(alarm.Properties.AlarmDescription).toContain('RUNBOOK.md#jobs-waiting-for-workers');
      }
    });

    it('sends worker tasks of this cluster that stop non-zero or fail to start to the ops topic', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.ecs'],
          'detail-type': ['ECS Task State Change'],
          detail: {
            clusterArn: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkersCluster'), 'Arn'] }],
            lastStatus: ['STOPPED'],
            $or: [{ containers: { exitCode: [{ 'anything-but': 0 }] } }, { stopCode: ['TaskFailedToStart'] }],
          },
        },
        Targets: [
          Match.objectLike({
            Arn: { Ref: Match.stringLikeRegexp('^MonitoringOpsTopic') },
            InputTransformer: Match.anyValue(),
          }),
        ],
      });
    });

    it('lets CloudWatch and EventBridge use the topic key', () => {
      template.hasResourceProperties('AWS::KMS::Key', {
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Principal: { Service: ['cloudwatch.amazonaws.com', 'events.amazonaws.com'] },
              Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            }),
          ]),
        },
      });
    });
  });

  describe('dashboard', () => {
    it('shows DLQ depth, Lambda errors/duration/throttles and API 4xx/5xx/latency next to the custom metrics', () => {
      // Act
      const metrics = dashboardMetrics(template).map(([ns, name]) => `${ns}/${name}`);

      // Assess
      expect(metrics).toEqual(
        expect.arrayContaining([
          'AWS/SQS/ApproximateNumberOfMessagesVisible',
          'AWS/SQS/ApproximateAgeOfOldestMessage',
          'AWS/Lambda/Errors',
          'AWS/Lambda/Duration',
          'AWS/Lambda/Throttles',
          'AWS/ApiGateway/4XXError',
          'AWS/ApiGateway/5XXError',
          'AWS/ApiGateway/Latency',
          'ECS/ContainerInsights/TaskCount',
        ]),
      );
      template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'rowfleet-dev' });
    });
  });
});
