import { describe, expect, it } from 'vitest';
import { workerBudgetOf } from '../../../config/budget.ts';
import { getStage, loadConfig, rawConfig } from '../../../config/index.ts';

describe('Function: workerBudgetOf', () => {
  it("sizes the default budget for a new account's Fargate quota: 6 vCPUs ÷ 0.5-vCPU workers = 12", () => {
    // Prepare
    const stage = getStage('prod');

    // Act
    const budget = workerBudgetOf(stage);

    // Assess
    expect(stage.infra.workerCpu).toBe(512);
    expect(budget).toMatchObject({ maxWorkers: 12, sites: {} });
  });

  it('follows the quota and the worker size, an explicit maximum, and a local override', () => {
    // Prepare
    const cfg = loadConfig({
      ...rawConfig,
      stages: [
        { name: 'big', workerBudget: { vcpuQuota: 400 }, infra: { workerCpu: 1024 } },
        { name: 'set', workerBudget: { maxWorkers: 200, sites: { sakai: { weight: 2, maxWorkers: 50 } } } },
      ],
    });

    // Act
    const big = workerBudgetOf(getStage('big', cfg));
    const set = workerBudgetOf(getStage('set', cfg));
    const local = workerBudgetOf(getStage('set', cfg), 4);

    // Assess
    expect(big.maxWorkers).toBe(400);
    expect(set).toMatchObject({ maxWorkers: 200, sites: { sakai: { weight: 2, maxWorkers: 50 } } });
    expect(local.maxWorkers).toBe(4);
  });

  it('refuses weights or caps for a site that is not configured, and a budget that is not whole', () => {
    // Prepare
    const unknown = {
      ...rawConfig,
      stages: [{ name: 'x', workerBudget: { sites: { nowhere: { weight: 2 } } } }],
    };

    // Act
    const load = () => loadConfig(unknown);
    const half = () => workerBudgetOf(getStage('prod'), 2.5);

    // Assess
    expect(load).toThrow(/workerBudget names unknown site "nowhere"/);
    expect(half).toThrow(/whole number/);
  });
});
