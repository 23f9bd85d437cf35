import * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthStage, type Synthesized } from '../helpers/synth.ts';

/** The worker construct's grants answer what they granted, as CDK's grant methods do (iam.Grant). */
describe('Workers (lib/workers.ts) grants', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthStage('dev');
  });
  afterAll(() => s.cleanup());

  const actionsOf = (grant: iam.Grant) =>
    grant.principalStatements.flatMap((st) => st.actions).sort((a, b) => a.localeCompare(b));

  it.each([
    ['grantRun', ['ecs:RunTask', 'ecs:TagResource', 'iam:PassRole']],
    ['grantDescribe', ['ecs:DescribeTasks']],
    ['grantStop', ['ecs:ListTasks', 'ecs:StopTask']],
  ] as const)('%s returns the grant it added to the role', (method, actions) => {
    const role = new iam.Role(s.stack, `Probe-${method}`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });

    const grant = s.stack.workers[method](role);

    expect(grant.success).toBe(true);
    expect(actionsOf(grant)).toEqual(actions);
  });
});
