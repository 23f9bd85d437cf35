import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { findingAcknowledgements } from '../../lib/nag.ts';
import { synthStage, type Synthesized } from '../helpers/synth.ts';

/** Every acknowledgement recorded in the tree: rule id (with its finding) → reason. */
function acknowledgements(root: IConstruct): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.set(`${c.node.path} ${id.replace(/^annotation::/i, '')}`, reason);
      }
    }
  }
  return out;
}

/** The rules acknowledged anywhere, without the finding (`AwsSolutions-IAM5[Resource::…]` → `AwsSolutions-IAM5`). */
function acknowledgedRules(root: IConstruct): string[] {
  const rules = [...acknowledgements(root).keys()]
    .map((k) => k.split(' ')[1]!.replace(/\[.*$/, ''))
    .filter((id) => id.startsWith('AwsSolutions-')); // aws-cdk-lib acknowledges some of its own template checks
  return [...new Set(rules)].sort();
}

describe.each(['dev', 'prod'])('Stack: Rowfleet-%s cdk-nag', (stage) => {
  let s: Synthesized;

  beforeAll(() => {
    // Prepare, Act: the synth itself fails on any unacknowledged finding (validation plugin, as in bin/)
    s = synthStage(stage);
  });
  afterAll(() => s.cleanup());

  it('has no unacknowledged AwsSolutions finding, error or warning', () => {
    // Act
    const report = new AwsSolutionsChecks(s.app).validateScope(s.app);

    // Assess
    const findings = report.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath}`),
    );
    expect(findings).toEqual([]);
  });

  it('acknowledges only the reviewed rules, each with a specific reason', () => {
    // Assess
    expect(acknowledgedRules(s.app)).toEqual([
      'AwsSolutions-APIG3',
      'AwsSolutions-APIG4',
      'AwsSolutions-COG4',
      'AwsSolutions-ECS2',
      'AwsSolutions-IAM4',
      'AwsSolutions-IAM5',
      'AwsSolutions-L1',
      'AwsSolutions-S1',
      'AwsSolutions-SQS3',
    ]);
    for (const [where, reason] of acknowledgements(s.app)) {
      if (where.includes(' AwsSolutions-')) expect(reason.length, where).toBeGreaterThanOrEqual(40);
    }
  });

  it('acknowledges granular findings narrowly: every pattern is used, and no IAM5 on an action wildcard', () => {
    // Assess
    const acks = findingAcknowledgements(s.app);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) expect(a.matched, `${a.scopePath} ${a.ack.match}`).toBeGreaterThan(0);
    const iam5 = [...acknowledgements(s.app).keys()].filter((k) => k.includes('AwsSolutions-IAM5['));
    for (const k of iam5) expect(k).toMatch(/IAM5\[Resource::/);
    expect(iam5.some((k) => k.includes('IAM5[Action::'))).toBe(false);
  });
});
