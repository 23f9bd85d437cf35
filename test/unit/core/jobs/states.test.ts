import { describe, expect, it } from 'vitest';
import {
  allowedFrom,
  countsAgree,
  isTerminal,
  outcome,
  TERMINAL_STATES,
} from '../../../../core/jobs/states.ts';

describe('Function: outcome', () => {
  it.each([
    [{ total: 3, succeeded: 3, failed: 0, rejected: 0 }, 'SUCCEEDED'],
    [{ total: 3, succeeded: 2, failed: 1, rejected: 0 }, 'PARTIAL'],
    [{ total: 3, succeeded: 2, failed: 0, rejected: 1 }, 'PARTIAL'],
    [{ total: 3, succeeded: 1, failed: 1, rejected: 1 }, 'PARTIAL'],
    [{ total: 3, succeeded: 0, failed: 2, rejected: 1 }, 'FAILED'],
    [{ total: 2, succeeded: 0, failed: 0, rejected: 2 }, 'FAILED'],
  ] as const)('%j → %s', (counts, expected) => {
    // Prepare
    const c = { ...counts };

    // Act
    const state = outcome(c);

    // Assess
    expect(state).toBe(expected);
  });
});

describe('Function: allowedFrom', () => {
  it.each([
    ['RECEIVED', []],
    ['QUEUED', ['RECEIVED']],
    ['RUNNING', ['RECEIVED', 'QUEUED']],
    ['REJECTED', ['RECEIVED']],
    // A QUEUED job only once stopped (core/jobs/lease.ts beginFinalize)
    ['FINALIZING', ['QUEUED', 'RUNNING']],
    ['SUCCEEDED', ['FINALIZING']],
    ['PARTIAL', ['FINALIZING']],
    ['FAILED', ['RECEIVED', 'QUEUED', 'RUNNING', 'FINALIZING']],
    ['EXPIRED', ['RECEIVED']],
    // Before its split planned it (at once), or through its finalize (a stopped job, QUEUED or RUNNING)
    ['CANCELLED', ['RECEIVED', 'FINALIZING']],
  ] as const)('a job may move to %s only from %j', (to, from) => {
    // Prepare
    const target = to;

    // Act
    const allowed = allowedFrom(target);

    // Assess
    expect([...allowed].sort()).toEqual([...from].sort());
  });

  it('never leaves a terminal state', () => {
    // Prepare
    const all = [
      'RECEIVED',
      'QUEUED',
      'RUNNING',
      'FINALIZING',
      'SUCCEEDED',
      'PARTIAL',
      'FAILED',
      'REJECTED',
      'EXPIRED',
      'CANCELLED',
    ] as const;

    // Act
    const fromTerminal = all.flatMap((to) => allowedFrom(to)).filter(isTerminal);

    // Assess
    expect(fromTerminal).toEqual([]);
    expect(all.filter(isTerminal)).toEqual(TERMINAL_STATES);
    expect([...TERMINAL_STATES].sort()).toEqual([
      'CANCELLED',
      'EXPIRED',
      'FAILED',
      'PARTIAL',
      'REJECTED',
      'SUCCEEDED',
    ]);
  });
});

describe('Function: countsAgree', () => {
  it.each([
    [{ total: 6, succeeded: 3, failed: 2, rejected: 1 }, true],
    [{ total: 0, succeeded: 0, failed: 0, rejected: 0 }, true],
    [{ total: 6, succeeded: 3, failed: 2, rejected: 0 }, false],
    [{ total: 6, succeeded: 4, failed: 2, rejected: 1 }, false],
    [{ total: 6, succeeded: 3, failed: 3, rejected: 1 }, false],
    [{ total: 6, succeeded: 3, failed: 1, rejected: 2 }, true],
    [{ total: 5, succeeded: 3, failed: 2, rejected: 1 }, false],
  ] as const)('%j → %s: every record succeeded, failed or was rejected, once', (counts, expected) => {
    // Prepare
    const c = { ...counts };

    // Act
    const agree = countsAgree(c);

    // Assess
    expect(agree).toBe(expected);
  });
});
