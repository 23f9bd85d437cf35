import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.ts';
import { codeSpans, DOC_PATHS, readDoc, type DocFile } from '../helpers/docs.ts';

/**
 * Every command the docs show is one that exists and runs: each `rowfleet <command>` in README.md, RUNBOOK.md and
 * docs/*.md (code blocks and inline code) is a command of the CLI — a subcommand of a group too (`mail send`) —
 * and each of its `--options` is one that command takes (read from the CLI's own help, `test/helpers/cli-help-dump.mjs`); each `npm run
 * <script>` is a script of package.json; and each CLI command is run by the test named in RUN_BY. The README opens
 * with the two commands a newcomer types, and CI (`.ci/run`) runs the second.
 */

/** Where each documented CLI command runs: a test file, and what in it shows the command (or the function behind it) running. */
const RUN_BY: Readonly<Record<string, { readonly file: string; readonly shows: RegExp }>> = {
  run: { file: 'test/e2e/cli.test.ts', shows: /rowfleet\(\[\s*'run',/ },
  loadtest: { file: 'test/e2e/cli-commands.test.ts', shows: /'loadtest',/ },
  dev: { file: 'test/e2e/restart.test.ts', shows: /start\(\['dev',/ },
  processors: { file: 'test/e2e/processors.test.ts', shows: /rowfleet\(\['processors'/ },
  retry: { file: 'test/e2e/cli-commands.test.ts', shows: /'retry',/ },
  sites: { file: 'test/e2e/cli.test.ts', shows: /rowfleet\(\['sites'/ },
  check: { file: 'test/e2e/check-cli.test.ts', shows: /rowfleet\(\[\s*'check',/ },
  trace: { file: 'test/e2e/trace.test.ts', shows: /rowfleet\(\[\s*'trace',/ },
  resubmit: { file: 'test/e2e/resubmit-cli.test.ts', shows: /rowfleet\(\[\s*'resubmit',/ },
  results: { file: 'test/e2e/resubmit-cli.test.ts', shows: /rowfleet\(\['results',/ },
  'token create': { file: 'test/e2e/cli-commands.test.ts', shows: /'token',\s*'create'/ },
  'mail list': { file: 'test/e2e/mail-kill.test.ts', shows: /'mail',\s*'list'/ },
  'mail send': { file: 'test/e2e/mail-cli.test.ts', shows: /mailCli\('send'/ },
  'mail preview': { file: 'test/e2e/mail-cli.test.ts', shows: /mailCli\('preview'/ },
  // The post-deploy and pre-deploy checks need a deployed stage and AWS credentials: their functions run.
  smoke: { file: 'test/e2e/local-api.test.ts', shows: /await smoke\(/ },
  doctor: { file: 'test/unit/cli/doctor.test.ts', shows: /await runDoctor\(/ },
};

const THE_TWO_COMMANDS = 'npm ci && npx rowfleet run samples/clients.csv --site sakai\nnpm test\n';

interface Shown {
  readonly doc: string;
  readonly line: string;
}

/** The lines of a doc that may hold a command: its shell-like code blocks and its inline code. */
function commandLines(doc: DocFile): string[] {
  return [
    ...doc.blocks
      .filter((b) => !['ts', 'tsx', 'js', 'json'].includes(b.lang))
      .flatMap((b) => b.body.split('\n')),
    ...codeSpans(doc.prose),
  ].map((l) => l.replace(/\s#\s.*$/, ''));
}

/**
 * `rowfleet <command> [<subcommand>]` of a line, with the options after them. The second word counts only when it
 * is a word (`mail send`, `mail send|preview`), not a file or a placeholder (`run rows.csv`, `retry <token>`).
 */
function rowfleetCommands(line: string): { words: string[]; options: string[] }[] {
  const command = /(?:^|[\s/(])rowfleet(?:\.mjs)?\s+([a-z][\w-]*)(?:\s+([a-z][\w|-]*)(?=\s|$))?([^&;]*)/g;
  return [...line.matchAll(command)].map((m) => ({
    words: m[2] === undefined ? [m[1]!] : [m[1]!, m[2]],
    options: [...m[3]!.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)].map((o) => `--${o[1]!}`),
  }));
}

function npmScripts(line: string): string[] {
  return [...line.matchAll(/\bnpm\s+(?:run\s+([\w:.-]+)|(test)\b)/g)].map((m) => (m[1] ?? m[2])!);
}

/** The command names a `--help` output lists under "Commands:". */
function commandsOf(help: string): Set<string> {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return new Set([...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!));
}

const execFileAsync = promisify(execFile);
const docs = DOC_PATHS.map(readDoc);
const shown = docs.flatMap((d) => commandLines(d).map((line): Shown => ({ doc: d.path, line })));
/** Every command of the CLI (`''`, `'run'`, `'mail send'`, …) with its `--help` text, read from the CLI itself. */
async function cliCommands(): Promise<Map<string, string>> {
  // The bin npx runs: the `cli/` workspace's (test/unit/cli/package.test.ts).
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'cli', 'package.json'), 'utf8')) as {
    bin: { rowfleet: string };
  };
  const dump = pathToFileURL(join(REPO_ROOT, 'test/helpers/cli-help-dump.mjs')).href;
  const bin = join('cli', pkg.bin.rowfleet);
  const { stdout } = await execFileAsync(process.execPath, ['--import', dump, bin], {
    cwd: REPO_ROOT,
    env: { ...process.env, CI: 'true' },
  });
  const commands = JSON.parse(stdout.trim().split('\n').at(-1)!) as { path: string[]; help: string }[];
  return new Map(commands.map((c) => [c.path.join(' '), c.help]));
}

/**
 * A documented command resolved against the CLI: its command paths (`mail send`) or a problem. Words after a
 * command without subcommands are its arguments; `a|b` names alternatives (`mail send|preview`).
 */
function resolve(cli: Map<string, string>, words: readonly string[]): { paths: string[]; problem?: string } {
  const first = words[0]!;
  if (!cli.has(first)) return { paths: [], problem: `rowfleet ${first}: no such command` };
  const subs = commandsOf(cli.get(first)!);
  const alternatives = (words[1] ?? '').split('|').filter(Boolean);
  if (subs.size === 0 || alternatives.length === 0) return { paths: [first] };
  const missing = alternatives.filter((a) => !subs.has(a));
  if (missing.length > 0)
    return { paths: [], problem: `rowfleet ${first} ${missing.join('|')}: no such command` };
  return { paths: alternatives.map((a) => `${first} ${a}`) };
}

describe('Scenario: the commands README.md, RUNBOOK.md and docs/*.md show', () => {
  const problems: string[] = [];
  const documented = new Set<string>();

  beforeAll(async () => {
    const cli = await cliCommands();
    for (const { doc, line } of shown) {
      for (const { words, options } of rowfleetCommands(line)) {
        const { paths, problem } = resolve(cli, words);
        if (problem) problems.push(`${doc}: ${problem} (${line.trim()})`);
        for (const path of paths) {
          documented.add(path);
          for (const o of options)
            if (o !== '--help' && !new RegExp(`(?<![\\w-])${o}(?![\\w-])`).test(cli.get(path)!))
              problems.push(`${doc}: rowfleet ${path} takes no ${o} (${line.trim()})`);
        }
      }
    }
  }, 120_000);

  it('are commands of the CLI, with options each command takes', () => {
    // Assess
    expect(documented.size).toBeGreaterThan(5);
    expect(problems).toEqual([]);
  });

  it('are each run by a test', () => {
    // Act
    const unrun = [...documented].filter((c) => {
      const by = RUN_BY[c];
      return (
        !by ||
        !existsSync(join(REPO_ROOT, by.file)) ||
        !by.shows.test(readFileSync(join(REPO_ROOT, by.file), 'utf8'))
      );
    });

    // Assess
    expect(unrun).toEqual([]);
  });

  it('name only npm scripts package.json has', () => {
    // Prepare
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };

    // Act
    const missing = shown.flatMap(({ doc, line }) =>
      npmScripts(line)
        .filter((s) => !(s in pkg.scripts))
        .map((s) => `${doc}: npm run ${s} (${line.trim()})`),
    );

    // Assess
    expect(missing).toEqual([]);
  });
});

describe('Scenario: the two commands of the README', () => {
  it('opens the README with exactly the two commands, and CI runs the second', () => {
    // Prepare
    const readme = readDoc('README.md');
    const ci = readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8');

    // Act
    const first = readme.blocks[0];

    // Assess
    expect(first).toEqual({ lang: 'sh', body: THE_TWO_COMMANDS });
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});

describe('Function: rowfleetCommands', () => {
  it.each([
    [
      'npx rowfleet mail send --site sakai [--day YYYY-MM-DD] [--json]',
      ['mail', 'send'],
      ['--site', '--day', '--json'],
    ],
    ['node cli/rowfleet.mjs run a.csv --site x && npm test', ['run'], ['--site']],
    ['npx rowfleet retry <token> --site <id> [--json]', ['retry'], ['--site', '--json']],
    ['npx rowfleet mail send|preview', ['mail', 'send|preview'], []],
  ])('%s', (line, words, options) => {
    // Act
    const [found] = rowfleetCommands(line);

    // Assess
    expect(found).toEqual({ words, options });
  });

  it('reads no command in words that only contain rowfleet', () => {
    // Act
    const found = ['`rowfleet_record`', 'rowfleet-dev', 'rowfleet:sakai'].flatMap(rowfleetCommands);

    // Assess
    expect(found).toEqual([]);
  });
});
