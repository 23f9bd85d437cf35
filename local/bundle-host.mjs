// Child-process entry of a function run from its deployed bundle (local/functions.ts IsolatedFunction with `bundle`):
// plain JavaScript with node: imports only, so it runs on the deployed Node with no loader and resolves nothing from
// the project. It imports the bundle's entry (argv[2], e.g. <cdk.out asset copy>/index.mjs) as Lambda's Node runtime
// does, then invokes its `handler` with each event; the context comes from the parent (local/functions.ts), only its
// functions are added here. Same messages as local/lambda-host.ts.
import { pathToFileURL } from 'node:url';

const entry = process.argv[2];
if (!entry) throw new Error('usage: bundle-host.mjs <bundle entry>');
const { handler } = await import(pathToFileURL(entry).href);
if (typeof handler !== 'function') throw new Error(`${entry} exports no handler`);
const maxRss = () => process.resourceUsage().maxRSS * 1024;
const noop = () => undefined;

process.on('message', (m) => {
  const context = {
    ...m.context,
    getRemainingTimeInMillis: () => Math.max(0, m.context.deadline - Date.now()),
    done: noop,
    fail: noop,
    succeed: noop,
  };
  Promise.resolve()
    .then(() => handler(m.event, context))
    .then(
      (result) => process.send?.({ id: m.id, result, maxRss: maxRss() }),
      (err) =>
        process.send?.({
          id: m.id,
          error: err instanceof Error ? err.message : String(err),
          maxRss: maxRss(),
        }),
    );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
