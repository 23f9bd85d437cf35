/** The embedded DynamoDB (dynalite): its tables in the state directory, its API signed with the runtime's credentials. */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import dynalite from 'dynalite';
import {
  guardServer,
  loopbackHost,
  portOf,
  sigV4Refusal,
  type EmulatorCredentials,
} from '../emulator-gate.ts';

/** Starts dynalite on a free loopback port; its data in `<stateDir>/dynamodb` when given, else in memory. */
export async function startDynamo(
  stateDir: string | undefined,
  credentials: EmulatorCredentials,
): Promise<Server> {
  const ddbDir = stateDir ? join(stateDir, 'dynamodb') : undefined;
  if (ddbDir) mkdirSync(ddbDir, { recursive: true });
  const ddb = dynalite({ path: ddbDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  guardServer(ddb, (req) =>
    loopbackHost(req.headers.host, portOf(ddb))
      ? sigV4Refusal(req, credentials)
      : 'Host is not this emulator on loopback',
  );
  await new Promise<void>((r) => ddb.listen(0, '127.0.0.1', () => r()));
  return ddb;
}
