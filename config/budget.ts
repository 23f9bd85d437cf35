import type { StageConfig } from './schema.ts';

/** Fargate counts task CPU in units of 1/1024 vCPU (`infra.workerCpu` 512 = 0.5 vCPU). */
const CPU_UNITS_PER_VCPU = 1024;

/** The stage's worker budget as the granting code takes it (core/budget/policy.ts `BudgetPolicy`). */
export interface ResolvedWorkerBudget {
  /** Most workers running at once in the stage. */
  readonly maxWorkers: number;
  readonly sites: Readonly<Record<string, { readonly weight: number; readonly maxWorkers?: number }>>;
  readonly queueWaitAlarmSeconds: number;
}

/**
 * The stage's budget: `workerBudget.maxWorkers` when set, else as many workers as the account's Fargate vCPU
 * quota holds at the configured worker size. `override` (`--max-workers N` locally) replaces the total.
 */
export function workerBudgetOf(stage: StageConfig, override?: number): ResolvedWorkerBudget {
  const b = stage.workerBudget;
  const workerVcpus = stage.infra.workerCpu / CPU_UNITS_PER_VCPU;
  const fromQuota = Math.max(1, Math.floor(b.vcpuQuota / workerVcpus));
  const maxWorkers = override ?? b.maxWorkers ?? fromQuota;
  if (!Number.isInteger(maxWorkers) || maxWorkers < 1) {
    throw new Error(`worker budget must be a whole number ≥ 1, got ${maxWorkers}`);
  }
  return {
    maxWorkers,
    sites: b.sites,
    queueWaitAlarmSeconds: b.queueWaitAlarmSeconds,
  };
}
