/**
 * An example of a user's processor (docs/processors.md's worked example): POSTs each row as a JSON object to the URL
 * in ROWFLEET_WEBHOOK_URL and keeps the answer as `webhooks/<n>.json`. A POST acts on another system, so the
 * processor declares side effects: each row is claimed before its request and never sent twice, and the
 * row's idempotency key travels as `Idempotency-Key` for a server that deduplicates too.
 *
 * Adding a processor is this one file: `processors/<name>.ts` exporting the processor as default. The CLI, the
 * local runtime, the API and the worker image pick it up; `npx rowfleet processors` lists it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RecordError, type RowContext, type RowInput, type RowProcessor } from '../core/processors/types.ts';

/** Read once, when the worker loads the processor (set it in the worker's environment). */
const url = process.env.ROWFLEET_WEBHOOK_URL;

/** Answers that mean "not now, nothing done": tried again after a backoff. */
const BUSY = new Set([429, 503]);
const TRIES = 4;

export default {
  name: 'webhook',
  description:
    'webhooks/<n>.json: POSTs each row as JSON to $ROWFLEET_WEBHOOK_URL (Idempotency-Key), at most once',
  concurrency: 32,
  costMs: 200,
  rateLimit: { perSecond: 50 },
  sideEffects: true,
  timeoutMs: 10_000,
  async process(row: RowInput, ctx: RowContext) {
    // Nothing was sent yet: a RecordError says so (the row fails with this code, it is not in doubt).
    if (!url) throw new RecordError('WEBHOOK_NOT_CONFIGURED', 'ROWFLEET_WEBHOOK_URL is not set; not sent');
    const body = JSON.stringify(Object.fromEntries(ctx.header.map((h, i) => [h, row.fields[i] ?? ''])));
    for (let tryNo = 1; ; tryNo++) {
      // ctx.signal aborts on the attempt's timeout (timeoutMs) and when the worker must stop. A request that
      // throws here (timeout, reset) may have reached the server: the error is left as it is, so the row is
      // reported IN_DOUBT and never sent again.
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': ctx.idempotencyKey },
        body,
        signal: ctx.signal,
      });
      const answer = await res.text();
      if (BUSY.has(res.status)) {
        if (tryNo >= TRIES)
          throw new RecordError('WEBHOOK_BUSY', `HTTP ${res.status} after ${TRIES} tries; not sent`);
        const wait = Number(res.headers.get('retry-after')) * 1000 || 100 * 2 ** tryNo;
        await sleep(Math.min(wait, 2000), undefined, { signal: ctx.signal }).catch(() => {
          throw new RecordError('WEBHOOK_BUSY', `HTTP ${res.status}, stopped before trying again; not sent`);
        });
        continue;
      }
      // A 4xx answer refused the request (nothing done); a 5xx one may have done part of it: left in doubt.
      if (res.status >= 400 && res.status < 500)
        throw new RecordError('WEBHOOK_REFUSED', `HTTP ${res.status}: ${answer.slice(0, 200)}`);
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${answer.slice(0, 200)}`);
      return [{ name: `webhooks/${row.n}.json`, data: JSON.stringify({ status: res.status, answer }) }];
    }
  },
} satisfies RowProcessor;
