/**
 * Users' processors read apart from the asking process (core/processors/users.ts): what each declares comes
 * from an inspection in a child process, killed when it hangs; a `checkJob` runs there too; `RecordError` is
 * recognised across the copies of the class each built processor carries.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BadRequestError } from '../../../../core/shared/errors.ts';
import { processorInfo } from '../../../../core/processors/index.ts';
import { RecordError } from '../../../../core/processors/types.ts';
import { TransientSimulatedError } from '../../../../core/processors/simulate.ts';

vi.hoisted(() => {
  process.env.ROWFLEET_INSPECT_TIMEOUT_MS = '4000';
});

const ERRORS = fileURLToPath(new URL('../../../../core/shared/errors.ts', import.meta.url));
let dir: string;
const saved = process.env.ROWFLEET_PROCESSORS_DIR;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rowfleet-inspection-'));
  writeFileSync(
    join(dir, 'hangs.ts'),
    "while (true) {}\nexport default { name: 'hangs', description: 'd', process: () => [] };\n",
  );
  writeFileSync(
    join(dir, 'picky.ts'),
    `import { BadRequestError } from ${JSON.stringify(ERRORS)};
export default {
  name: 'picky',
  description: 'd',
  rateLimit: { perSecond: (stage: { name: string }) => (stage.name === 'local' ? 7 : 1) },
  needs: { columns: ['email', '氏名'] },
  checkJob(job: { options: Record<string, string> }) {
    if (job.options.template !== 'ok') throw new BadRequestError('PICKY_TEMPLATE', 'template must be ok');
  },
  process: () => [],
};
`,
  );
  process.env.ROWFLEET_PROCESSORS_DIR = dir;
});

afterAll(() => {
  if (saved === undefined) delete process.env.ROWFLEET_PROCESSORS_DIR;
  else process.env.ROWFLEET_PROCESSORS_DIR = saved;
  rmSync(dir, { recursive: true, force: true });
});

describe('Function: processorInfo (a user processor read apart)', () => {
  it('flags a module that hangs at import as PROCESSOR_BROKEN once its inspection is killed', async () => {
    // Act
    const err = await processorInfo('hangs', 'local').catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ code: 'PROCESSOR_BROKEN', status: 503 });
    expect((err as Error).message).toBe('processors/hangs.ts is broken: did not load within 4 s (killed)');
  }, 30_000);

  it("reads the rate and the needed columns for the stage and runs the processor's checkJob in the child: a refusal keeps its code", async () => {
    // Act
    const info = await processorInfo('picky', 'local');
    const refused = await Promise.resolve(info.checkJob?.({ site: 'sakai', options: {} })).catch(
      (e: unknown) => e,
    );
    const accepted = await info.checkJob?.({ site: 'sakai', options: { template: 'ok' } });

    // Assess
    expect(info.rateLimit).toEqual({ perSecond: 7 });
    // What it needs from a job's header travels in its manifest (the split refuses a file lacking it)
    expect(info.needs).toEqual({ columns: ['email', '氏名'] });
    expect(refused).toBeInstanceOf(BadRequestError);
    expect(refused).toMatchObject({ code: 'PICKY_TEMPLATE', status: 400, message: 'template must be ok' });
    expect(accepted).toBeUndefined();
  }, 60_000);
});

describe('Class: RecordError (one brand for every copy of the class)', () => {
  it('recognises a RecordError of another copy of the class, and keeps subclasses apart', () => {
    // Prepare: what a separately built processor throws (its own class, the same brand)
    const foreign = Object.defineProperty(new Error('x'), Symbol.for('rowfleet.RecordError'), {
      value: true,
    });

    // Assess
    expect(foreign instanceof RecordError).toBe(true);
    expect(new Error('plain') instanceof RecordError).toBe(false);
    expect(new RecordError('MINE', 'm') instanceof RecordError).toBe(true);
    expect(new TransientSimulatedError('t') instanceof RecordError).toBe(true);
    expect(new RecordError('MINE', 'm') instanceof TransientSimulatedError).toBe(false);
  });
});
