/**
 * `npm run gen:api-models`: writes lib/api-models.json, the API Gateway models generated from the request
 * schemas in core/ (lib/ may not import core/). test/infra/api-models.test.ts fails when the file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { apiModels } from '../core/intake/request.ts';

const file = fileURLToPath(new URL('../lib/api-models.json', import.meta.url));
writeFileSync(file, JSON.stringify(apiModels(), null, 2) + '\n');
process.stderr.write(`wrote ${file}\n`);
