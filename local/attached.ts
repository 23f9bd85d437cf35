/**
 * The pipeline side of a command attached to its state directory's runtime (local/attach.ts): the dependencies
 * addressing the runtime's resources, the usage-mail function, the API tokens. Loaded apart from attach.ts (it
 * brings the AWS SDK clients and the handlers), while the runtime starts.
 */
import { buildDeps, fromEnv } from '../core/deps.ts';
import { resetClients } from '../core/aws/clients.ts';
import { ApiTokens } from '../core/intake/tokens.ts';
import {
  LaunchFailedError,
  type LaunchRequest,
  type TaskInfo,
  type TaskLauncher,
} from '../core/aws/task-launcher.ts';
import { usageMailDepsFromEnv } from '../core/usage/mail.ts';
import { createUsageMailHandler } from '../lambdas/usage-mail/handler.ts';
import { localContext } from '../lambdas/shared/middleware.ts';
import { control, type AttachedApi, type AttachedRuntime } from './attach.ts';
import type { RuntimeOwner } from './ownership.ts';
import { setLocalAwsDefaults } from './resources.ts';
import { mailViewerUrl } from './emulator-gate.ts';
import { ENV } from '../config/env.ts';

/** Workers are the runtime's child processes: an attached command launches them through it. */
class RuntimeLauncher implements TaskLauncher {
  constructor(private readonly owner: RuntimeOwner) {}
  async launch(req: LaunchRequest): Promise<string[]> {
    const r = (await control(this.owner, 'POST', '/launch', req)) as {
      started: string[];
      failed?: number;
      error?: string;
    };
    if (r.failed) throw new LaunchFailedError(r.started, r.failed, r.error ?? 'launch failed');
    return r.started;
  }
  async stop(site: string, token: string): Promise<number> {
    return ((await control(this.owner, 'POST', '/stop', { site, token })) as { stopped: number }).stopped;
  }
  async list(): Promise<TaskInfo[]> {
    return ((await control(this.owner, 'GET', '/tasks')) as { tasks: TaskInfo[] }).tasks;
  }
}

/** The attachment with the runtime's resources addressed from this process (its AWS settings taken). */
export function attached(
  api: AttachedApi & { readonly owner: RuntimeOwner; readonly budgetEnv: Record<string, string> },
): AttachedRuntime {
  const { owner, budgetEnv } = api;
  // This process addresses the runtime's emulators and resources as its own processes do.
  setLocalAwsDefaults(owner.stage);
  // Attached again to a runtime started since (new ports): the clients made for the last one are forgotten.
  if (
    Object.entries(owner.env).some(
      ([k, v]) => k.startsWith('AWS_') && process.env[k] !== undefined && process.env[k] !== v,
    )
  )
    resetClients();
  // The SDK clients and the usage mail's deps still read the environment (the runtime's endpoints, credentials).
  Object.assign(process.env, owner.env, { [ENV.runtimeInstance]: owner.instance });
  // The runtime's own budget wins over this command's `--max-workers` (which applies to a runtime it starts).
  const config = fromEnv({ ...process.env, ...budgetEnv, ...owner.env });
  const deps = buildDeps(config, new RuntimeLauncher(owner));
  const mailDeps = usageMailDepsFromEnv();
  const usageMail = createUsageMailHandler(mailDeps);
  const tokens = new ApiTokens(deps.env.table);
  return {
    ...api,
    ...(owner.endpoints.ses ? { mailViewerUrl: mailViewerUrl(owner.endpoints) } : {}),
    deps,
    mailDeps,
    usageMail: (input) => usageMail(input, localContext('usage-mail')),
    issueToken: (site) => tokens.issue(site, 'cli'),
  };
}
