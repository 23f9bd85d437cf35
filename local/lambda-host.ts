/** Child-process entry of an isolated local function (see IsolatedFunction). */
import { errorMessage } from '../core/shared/errors.ts';
import { FUNCTIONS, inProcess, localLauncher, type FunctionName } from './functions.ts';
import { ENV } from '../config/env.ts';

const name = process.env[ENV.functionName] as FunctionName;
if (!(name in FUNCTIONS)) throw new Error(`unknown function ${name}`);
const invoke = inProcess(
  name,
  localLauncher(process.env[ENV.stateDir] ?? '.rowfleet', process.env[ENV.runtimeInstance]),
);
const maxRss = () => process.resourceUsage().maxRSS * 1024;

process.on('message', (m: { id: number; event: unknown }) => {
  invoke(m.event).then(
    (result) => process.send?.({ id: m.id, result, maxRss: maxRss() }),
    (err: unknown) => process.send?.({ id: m.id, error: errorMessage(err), maxRss: maxRss() }),
  );
});
process.on('disconnect', () => process.exit(0));
// Loaded: the runtime waits for this before it takes requests (local/functions.ts IsolatedFunction.ready).
process.send?.({ ready: true });
