/**
 * `node --import tsx core/processors/manifests.ts <stage>`: prints (one JSON line) the manifest of every user's
 * processor, or its error, each file inspected in a process of its own (users.ts). The CDK app reads it at synth
 * (lib/processors.ts): the API's functions on AWS get what the processors declare without importing them.
 */
import { processorNames } from './index.ts';
import { inspectProcessor, usersNames, type Inspected } from './users.ts';

const stage = process.argv[2] ?? 'local';
const users = usersNames();
const reserved = processorNames().filter((n) => !users.includes(n));
const entries = await Promise.all(
  users.map(async (name): Promise<[string, Inspected | undefined]> => [
    name,
    await inspectProcessor(name, stage, reserved),
  ]),
);
const manifests = Object.fromEntries(entries.filter((e): e is [string, Inspected] => e[1] !== undefined));
process.stdout.write(JSON.stringify(manifests) + '\n', () => process.exit(0));
