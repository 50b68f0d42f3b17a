/**
 * One putMany of large jobs in a fresh process, reporting the process's peak resident memory: the
 * figure the window bounds (a batch used to hold every body before sending the first). Run as a child
 * by the sizes group (`npm run bench -- --only sizes`), or by hand:
 *
 *   node --import tsx bench/put-many-memory.ts <port> <jobs> <records|string> <bytes> [window]
 *
 * Prints one JSON line: `peakRssMb` (the kernel's maxRSS, which no sampling interval can miss during
 * putMany's synchronous check), `startRssMb` (after connecting, before the batch), `seconds`.
 */
import { performance } from 'node:perf_hooks';
import { createLogger, JobQueue } from '../src/index.js';
import { pipelineDeletes, RawClient } from '../test/helpers/raw-client.js';
import { freshTube } from './context.js';
import { kwargsOf, type Shape } from './shapes.js';

async function main(): Promise<void> {
  const [port, jobs, shape, bytes, window] = process.argv.slice(2);
  const count = Number(jobs);
  const queue = new JobQueue({ url: `127.0.0.1:${port}`, logger: createLogger({ level: 'silent' }) });
  const task = queue.task(freshTube('memory'))(async function benchMemory(_kw: Record<string, unknown>) {});
  const cleaner = await RawClient.connect(Number(port));
  try {
    // One kwargs object, `count` times: each item is still encoded into a body of its own, and the
    // caller's list then weighs nothing, so the peak is putMany's own memory.
    const kwargs = kwargsOf(shape as Shape, Number(bytes));
    const list = Array.from({ length: count }, () => kwargs);
    // Connects (and reads max-job-size) before the baseline, so that only the batch is measured.
    await pipelineDeletes(cleaner, [await task.put({ warm: true })]);
    const startRssMb = process.memoryUsage.rss() / 2 ** 20;
    const start = performance.now();
    const ids = await task.putMany(list, window === undefined ? {} : { window: Number(window) });
    const seconds = (performance.now() - start) / 1000;
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    if (ids.length !== count) throw new Error(`expected ${count} ids, got ${ids.length}`);
    await pipelineDeletes(cleaner, ids);
    process.stdout.write(`${JSON.stringify({ peakRssMb, startRssMb, seconds })}\n`);
  } finally {
    cleaner.close();
    await queue.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`put-many-memory: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
