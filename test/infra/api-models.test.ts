import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { apiModels } from '../../core/intake/request.ts';
import { projectPath } from '../../lib/paths.ts';

describe('File: lib/api-models.json', () => {
  it('is the model generated from the job-request schema in core/ (run `npm run gen:api-models` if not)', () => {
    // Act
    const committed = JSON.parse(readFileSync(projectPath('lib/api-models.json'), 'utf8')) as unknown;

    // Assess
    expect(committed).toEqual(apiModels());
  });
});
