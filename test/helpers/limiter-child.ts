/**
 * A separate process taking from a shared rate limiter (test/integration/core/work/rate-limiter.test.ts): argv table,
 * name, rate per second, takes. Waits for "go" on stdin, so every process starts at once; prints one JSON line:
 * the time of each take and the limiter's DynamoDB requests.
 */
import { RateLimiter } from '../../core/work/rate-limiter.ts';

const [table, name, rate, count] = process.argv.slice(2);
const limiter = new RateLimiter(table!, name!, Number(rate));
process.stdout.write('ready\n');
await new Promise<void>((r) => process.stdin.once('data', () => r()));
const times: number[] = [];
await Promise.all(
  Array.from({ length: Number(count) }, () => limiter.take().then(() => void times.push(Date.now()))),
);
process.stdout.write(JSON.stringify({ times, stats: limiter.stats }) + '\n');
process.exit(0);
