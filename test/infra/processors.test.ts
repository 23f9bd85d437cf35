import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processorManifests } from '../../lib/processors.ts';

describe("Function: processorManifests (users' processors at synth)", () => {
  const saved = process.env.ROWFLEET_PROCESSORS_DIR;
  let dir: string | undefined;
  afterEach(() => {
    if (saved === undefined) delete process.env.ROWFLEET_PROCESSORS_DIR;
    else process.env.ROWFLEET_PROCESSORS_DIR = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads what each processor declares, and fails the synth naming every broken file and its error', () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), 'rowfleet-synth-processors-'));
    writeFileSync(
      join(dir, 'fine.ts'),
      "export default { name: 'fine', description: 'd', costMs: 3, process: () => [] };\n",
    );
    writeFileSync(join(dir, 'throws.ts'), "throw new Error('no settings');\nexport default {};\n");
    writeFileSync(join(dir, 'exits.ts'), 'process.exit(2);\nexport default {};\n');
    process.env.ROWFLEET_PROCESSORS_DIR = dir;

    // Act
    const failure = (() => {
      try {
        processorManifests('dev');
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    })();

    // Assess
    expect(failure).toMatch(/processors\/exits\.ts: calls process\.exit\(2\) while loading/);
    expect(failure).toMatch(/processors\/throws\.ts: no settings/);
    expect(failure).not.toMatch(/fine\.ts/);
    rmSync(join(dir, 'throws.ts'));
    rmSync(join(dir, 'exits.ts'));
    expect(processorManifests('dev')).toEqual({
      fine: {
        ok: true,
        file: 'processors/fine.ts',
        manifest: { name: 'fine', description: 'd', costMs: 3, checkJob: false },
      },
    });
  }, 120_000);
});
