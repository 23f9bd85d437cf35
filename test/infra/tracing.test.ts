import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ENTRIES, type FunctionName } from '../../lib/rowfleet-stack.ts';
import { synthStage, type Synthesized } from '../helpers/synth.ts';

type Json = Record<string, unknown>;
interface Statement {
  readonly Action: string | string[];
  readonly Resource: unknown;
}

/** The functions that emit spans (issue 22): split and queue wait, finalize and job, the reaper's passes and expiries. */
const EMITTING: readonly FunctionName[] = ['upload', 'finalize', 'reaper'];

describe('Stack: trace export (OTLP to X-Ray)', () => {
  let s: Synthesized;
  let resources: Record<string, { Type: string; Properties?: Json }>;

  beforeAll(() => {
    s = synthStage('dev');
    resources = s.template.toJSON().Resources as typeof resources;
  });
  afterAll(() => s.cleanup());

  /** The actions every identity policy attached to a role grants, with their resources. */
  const grantsOf = (roleId: string): Statement[] =>
    Object.values(resources)
      .filter(
        (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties?.Roles).includes(`"${roleId}"`),
      )
      .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
  const putsTraces = (roleId: string) =>
    grantsOf(roleId).filter((st) => [st.Action].flat().includes('xray:PutTraceSegments'));

  it.each(Object.keys(FUNCTION_ENTRIES) as FunctionName[])(
    '%s: xray:PutTraceSegments and ROWFLEET_TRACING=otlp only when it emits spans',
    (name) => {
      const fn = s.stack.functions[name];
      const props = resources[s.stack.getLogicalId(fn.node.defaultChild as never)]!.Properties!;
      const roleId = (props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const env = (props.Environment as { Variables?: Json } | undefined)?.Variables ?? {};
      const grants = putsTraces(roleId);
      if (EMITTING.includes(name)) {
        expect(env.ROWFLEET_TRACING).toBe('otlp');
        expect(grants).toHaveLength(1);
        // The action has no resource-level permission; nothing else rides on the statement.
        expect(grants[0]).toMatchObject({ Action: 'xray:PutTraceSegments', Resource: '*' });
      } else {
        expect(env.ROWFLEET_TRACING).toBeUndefined();
        expect(grants).toEqual([]);
      }
    },
  );

  it("grants the worker task role (not its execution role) the export, with the task's env set", () => {
    const td = s.stack.workers.taskDefinition;
    const taskRole = s.stack.getLogicalId(td.taskRole.node.defaultChild as never);
    const execRole = s.stack.getLogicalId(td.obtainExecutionRole().node.defaultChild as never);
    expect(putsTraces(taskRole)).toHaveLength(1);
    expect(putsTraces(execRole)).toEqual([]);
    const container = (
      resources[s.stack.getLogicalId(td.node.defaultChild as never)]!.Properties!.ContainerDefinitions as {
        Environment: { Name: string; Value: unknown }[];
      }[]
    )[0]!;
    expect(container.Environment).toContainEqual({ Name: 'ROWFLEET_TRACING', Value: 'otlp' });
  });
});
