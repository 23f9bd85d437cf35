import { AspectPriority, Aspects, CfnResource, Validations, type IAspect } from 'aws-cdk-lib';
import { rules, type NagRuleResult } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag (v3) runs as a CDK policy-validation plugin: any unacknowledged finding stops the synth. These helpers
 * record acknowledgements; each one names the rule and says why the finding does not apply here.
 */

export interface Acknowledgement {
  /** The rule, e.g. `AwsSolutions-S1`. */
  readonly id: string;
  readonly reason: string;
}

function checkReason(id: string, reason: string): void {
  if (reason.trim().length < 40)
    throw new Error(`cdk-nag acknowledgement of ${id} needs a specific reason, got "${reason}"`);
}

/** Acknowledges whole rules on a construct and everything under it. */
export function acknowledge(scope: IConstruct, ...acks: Acknowledgement[]): void {
  for (const a of acks) checkReason(a.id, a.reason);
  Validations.of(scope).acknowledge(...acks);
}

/** Granular rules whose findings are acknowledged one by one (`AwsSolutions-IAM5[Resource::…]`). */
const GRANULAR_RULES = {
  'AwsSolutions-IAM4': rules.iam.IAMNoManagedPolicies,
  'AwsSolutions-IAM5': rules.iam.IAMNoWildcardPermissions,
} as const satisfies Record<string, (node: CfnResource) => NagRuleResult>;

export type GranularRule = keyof typeof GRANULAR_RULES;

export interface FindingAcknowledgement {
  readonly rule: GranularRule;
  /** The findings acknowledged, e.g. /^Resource::arn:.*:sqs:.*:dev-report-\*$/ (no `g` flag). */
  readonly match: RegExp;
  readonly reason: string;
}

/**
 * Acknowledges, under `scope`, exactly the findings of a granular rule that match `match`. cdk-nag v3 has no
 * pattern acknowledgements and findings name logical ids (`<DataBucket1234.Arn>/jobs/*`), so an aspect runs the
 * rule itself at synth and acknowledges each matching finding by its full id; any other finding still fails.
 */
export class AcknowledgeMatchingFindings implements IAspect {
  /** How many findings this acknowledgement covered (a test checks that none is stale). */
  matched = 0;

  constructor(
    readonly scopePath: string,
    readonly ack: FindingAcknowledgement,
  ) {}

  visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node)) return;
    const result = GRANULAR_RULES[this.ack.rule](node);
    if (!Array.isArray(result)) return;
    for (const finding of result) {
      if (!this.ack.match.test(finding)) continue;
      Validations.of(node).acknowledge({ id: `${this.ack.rule}[${finding}]`, reason: this.ack.reason });
      this.matched++;
    }
  }
}

export function acknowledgeFindings(scope: IConstruct, ...acks: FindingAcknowledgement[]): void {
  for (const a of acks) {
    checkReason(a.rule, a.reason);
    if (a.match.global)
      throw new Error(`acknowledgeFindings: ${a.match} must not use the g flag (stateful test())`);
    Aspects.of(scope).add(new AcknowledgeMatchingFindings(scope.node.path, a), {
      priority: AspectPriority.READONLY,
    });
  }
}

/** Every finding acknowledgement under `root` (for tests: reasons, and none left unused). */
export function findingAcknowledgements(root: IConstruct): AcknowledgeMatchingFindings[] {
  return root.node
    .findAll()
    .flatMap((c) => Aspects.of(c).all)
    .filter((a): a is AcknowledgeMatchingFindings => a instanceof AcknowledgeMatchingFindings);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * A pattern for an ARN as cdk-nag prints it in a finding: partition, region and account are either literals or
 * pseudo parameters (`<AWS::AccountId>`); `resource` is a regular-expression source for the rest.
 */
export function arnFinding(service: string, resource: string): RegExp {
  return new RegExp(
    `^Resource::arn:(?:aws[a-z-]*|<AWS::Partition>):${service}:(?:[a-z0-9-]+|<AWS::Region>):(?:\\d{12}|<AWS::AccountId>):${resource}$`,
  );
}
