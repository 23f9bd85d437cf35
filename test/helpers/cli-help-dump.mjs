// Preloaded (`node --import`) into the `rowfleet` CLI by test/unit/docs-commands.test.ts: when the CLI parses its
// arguments, it prints instead, as one JSON line, every command's path and `--help` text, and exits. One process
// answers for every command (a `--help` per command took a minute on two shared cores).
import { Command } from 'commander';

/** @param {Command} command @param {string[]} path @returns {{path: string[], help: string}[]} */
function walk(command, path) {
  return [
    { path, help: command.helpInformation() },
    ...command.commands.flatMap((c) => walk(c, [...path, c.name()])),
  ];
}

Command.prototype.parseAsync = async function dumpCommands() {
  process.stdout.write(JSON.stringify(walk(this, [])) + '\n');
  process.exit(0);
};
