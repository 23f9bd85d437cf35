import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getStage, loadConfig } from '../../config/index.ts';
import { keys, reportQueueName } from '../../core/jobs/keys.ts';
import { deployableStages, resolveStage, stageEnvironment } from '../../lib/app.ts';
import { KEY_PREFIXES, reportQueuePrefix } from '../../config/names.ts';
import { DEPLOYED_NODE_MAJOR, NODE_HTTP_ALIAS, NODE_TARGET } from '../../config/node.ts';
import { projectPath } from '../../lib/paths.ts';
import { WORKER_IMAGE_EXCLUDE } from '../../lib/workers.ts';

describe('Stack: app entry and shared names', () => {
  describe('stage selection', () => {
    it('deploys dev, stg and prod, never the local stage', () => {
      expect(deployableStages().map((s) => s.name)).toEqual(['dev', 'stg', 'prod']);
    });

    it('refuses a missing stage and lists the deployable ones', () => {
      expect(() => resolveStage(undefined)).toThrow(
        'No stage given. Pick one with -c stage=<name>; deployable stages: dev, stg, prod.',
      );
    });

    it('refuses an unknown stage and the local stage with a clear message', () => {
      expect(() => resolveStage('qa')).toThrow('Unknown stage "qa". Deployable stages: dev, stg, prod.');
      expect(() => resolveStage('local')).toThrow(/runs on the embedded runtime/);
    });

    it('resolves a configured stage', () => {
      expect(resolveStage('prod').infra.retainData).toBe(true);
      expect(resolveStage('dev').infra.retainData).toBe(false);
    });
  });

  describe('account and region', () => {
    it('takes the region from the stage and the account from the credentials', () => {
      // Prepare
      const stage = getStage('dev');

      // Act
      const env = stageEnvironment(stage, {
        CDK_DEFAULT_ACCOUNT: '111111111111',
        CDK_DEFAULT_REGION: 'us-east-1',
      });

      // Assess
      expect(env).toEqual({ account: '111111111111', region: stage.region });
    });

    it('refuses credentials of another account than the one a stage is pinned to', () => {
      // Prepare
      const pinned = { ...getStage('prod'), account: '222222222222' };

      // Act, Assess
      expect(() => stageEnvironment(pinned, { CDK_DEFAULT_ACCOUNT: '111111111111' })).toThrow(
        /deploys to account 222222222222/,
      );
      expect(stageEnvironment(pinned, {})).toMatchObject({ account: '222222222222' });
    });
  });

  describe('names shared with core/ and local/', () => {
    it.each(loadConfig().stages.map((s) => s.name))(
      'names job queues under the prefix IAM is scoped to, within the SQS limit (%s)',
      (stage) => {
        const name = reportQueueName(stage, '00000000-0000-4000-8000-000000000000');
        expect(name.startsWith(reportQueuePrefix(stage))).toBe(true);
        expect(name.length).toBeLessThanOrEqual(80);
      },
    );

    it('scopes IAM to the key areas core/jobs/keys.ts writes', () => {
      const token = '00000000-0000-4000-8000-000000000000';
      expect(keys.source('sakai', token).startsWith(KEY_PREFIXES.uploads)).toBe(true);
      expect(keys.part('sakai', token, 0).startsWith(KEY_PREFIXES.jobs)).toBe(true);
      expect(keys.rejected('sakai', token).startsWith(KEY_PREFIXES.jobs)).toBe(true);
      expect(keys.result('sakai', token).startsWith(KEY_PREFIXES.results)).toBe(true);
    });
  });

  describe('worker image', () => {
    it('keeps .dockerignore equal to the asset exclude list', () => {
      const lines = readFileSync(projectPath('.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
      expect(lines).toEqual([...WORKER_IMAGE_EXCLUDE]);
    });

    it('builds in two stages from the deployed Node (node:24-slim) and runs worker.mjs as a non-root user', () => {
      const dockerfile = readFileSync(projectPath('fargate-worker/Dockerfile'), 'utf8');
      expect(dockerfile.match(/^FROM node:\S+/gm)).toEqual([
        `FROM node:${DEPLOYED_NODE_MAJOR}-slim`,
        `FROM node:${DEPLOYED_NODE_MAJOR}-slim`,
      ]);
      expect(dockerfile.match(/--target=\S+/g)).toEqual([`--target=${NODE_TARGET}`]);
      // The aliases the functions and the local worker are bundled with (config/node.ts), spelled as flags here.
      expect(dockerfile.match(/--alias:\S+/g)).toEqual(
        Object.entries(NODE_HTTP_ALIAS).map(([k, v]) => `--alias:${k}=${v}`),
      );
      expect(dockerfile).toMatch(/^RUN npm ci /m);
      expect(dockerfile).toMatch(/^USER node$/m);
      expect(dockerfile).toMatch(/^CMD \["node", "worker\.mjs"\]$/m);
      for (const dir of ['config', 'core', 'fargate-worker', 'processors']) {
        expect(WORKER_IMAGE_EXCLUDE).toContain(`!${dir}`);
        expect(dockerfile).toContain(`COPY ${dir} ./${dir}`);
      }
    });

    it("builds each of users' processors apart from the image's worker, and fails on a broken file naming it", () => {
      // Prepare: the build stage's commands, run on the same sources (and on a folder with a broken file)
      const dockerfile = readFileSync(projectPath('fargate-worker/Dockerfile'), 'utf8').replace(
        /\\\n\s*/g,
        '',
      );
      const run = /^RUN npx esbuild (.+)$/m.exec(dockerfile)![1]!;
      const [, script, srcDir, outDir] =
        /^RUN npx tsx (fargate-worker\/build-processors\.ts) (\S+) \/out\/(\S+) --strict$/m.exec(dockerfile)!;
      const out = mkdtempSync(join(tmpdir(), 'rowfleet-image-'));
      const args = (run.match(/--banner:js="[^"]*"|\S+/g) ?? []).map((a) =>
        a.startsWith('--outfile=')
          ? `--outfile=${join(out, 'worker.mjs')}`
          : a.replace(/^(--banner:js=)"(.*)"$/, '$1$2'),
      );
      const broken = join(out, 'src');
      mkdirSync(broken);
      writeFileSync(join(broken, 'oops.ts'), 'export default {\n  name: "oops"\n  description: "x",\n};\n');
      const buildProcessors = (src: string, dest: string) =>
        spawnSync(process.execPath, ['--import', 'tsx', script!, src, join(out, dest), '--strict'], {
          cwd: projectPath('.'),
          encoding: 'utf8',
        });

      // Act
      execFileSync(projectPath('node_modules/.bin/esbuild'), [...args, '--log-level=error'], {
        cwd: projectPath('.'),
      });
      const good = buildProcessors(projectPath(srcDir!), outDir!);
      const bad = buildProcessors(broken, 'bad');
      const map = JSON.parse(readFileSync(join(out, 'worker.mjs.map'), 'utf8')) as { sources: string[] };
      const built = readdirSync(join(out, outDir!));
      rmSync(out, { recursive: true, force: true });

      // Assess: the worker holds the built-in processors, each user's is a file of its own
      expect(map.sources.some((f) => f.endsWith('core/processors/mail.ts'))).toBe(true);
      expect(map.sources.some((f) => f.endsWith('processors/webhook.ts'))).toBe(false);
      expect(good.status, good.stderr).toBe(0);
      expect(built).toEqual(expect.arrayContaining(['webhook.mjs']));
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/processors\/oops\.ts: does not build: .*oops\.ts:3:\d+: Expected "\}"/);
    });
  });
});
