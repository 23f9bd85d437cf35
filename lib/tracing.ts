import * as iam from 'aws-cdk-lib/aws-iam';

/** Spans to X-Ray's OTLP endpoint: the one action it authorizes them as, which has no resource-level permission. */
export const TRACE_EXPORT_STATEMENT = () =>
  new iam.PolicyStatement({ sid: 'TraceExport', actions: ['xray:PutTraceSegments'], resources: ['*'] });

export const TRACE_EXPORT_ACK = {
  rule: 'AwsSolutions-IAM5',
  match: /^Resource::\*$/,
  reason:
    'xray:PutTraceSegments supports no resource-level permission (AWS requires "*"); it only sends this stage\'s job spans to X-Ray\'s OTLP endpoint.',
} as const;
