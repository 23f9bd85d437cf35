import { BadRequestError } from '../../shared/errors.ts';
import { jsonProcessor } from './json.ts';
import { reportProcessor } from './report.ts';
import type { RowProcessor } from './types.ts';

export type { RowProcessor, RowInput, RowContext, RowOutput } from './types.ts';

export const DEFAULT_PROCESSOR = 'report';

const registry = new Map<string, RowProcessor>([
  [jsonProcessor.name, jsonProcessor],
  [reportProcessor.name, reportProcessor],
]);

export function processorNames(): string[] {
  return [...registry.keys()];
}

export function getProcessor(name: string): RowProcessor {
  const p = registry.get(name);
  if (!p) {
    throw new BadRequestError(
      'UNKNOWN_PROCESSOR',
      `Unknown processor "${name}". Available: ${processorNames().join(', ')}.`,
    );
  }
  return p;
}
