/**
 * put -> task start latency, one job at a time: an in-process Worker (concurrency 1, a logger from
 * createLogger at the default level writing to a temp file) and a JobQueue put in the same process,
 * as the raw latency has its producer and consumer in one process. Before each put the server must
 * report the worker's reserve as waiting, so a sample never includes the previous job's delete.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger, JobQueue, Worker } from '../../src/index.js';
import { RawClient } from '../../test/helpers/raw-client.js';
import { type BenchContext, freshTube, PARTS_PER_RUN, type ScenarioGroup } from '../context.js';
import { type BenchKwargs, KWARGS } from '../payload.js';
import { waitForWaiting } from '../poll.js';
import { RAW } from './raw.js';

/** Scenario names the report refers to. */
export const LATENCY = Object.freeze({ worker: 'worker-latency' });

/** The latency scenario. The worker starts in the warm-up and runs until the group closes. */
export async function latencyGroup(ctx: BenchContext): Promise<ScenarioGroup> {
  const tube = freshTube('latency');
  let onStart: ((at: number) => void) | undefined;
  const queue = new JobQueue({ url: ctx.url, logger: createLogger({ level: 'silent' }) });
  const task = queue.task(tube)(async function latencyProbe(_kw: BenchKwargs) {
    // First statement: the moment the task starts is the end of the sample.
    const at = performance.now();
    onStart?.(at);
  });
  const logStream: WriteStream = createWriteStream(join(ctx.tmpDir, 'latency-worker.log'));
  // 'info' is the default level, given explicitly so that a LOG_LEVEL in the environment cannot change it.
  const worker = new Worker({
    tubes: [tube],
    url: ctx.url,
    concurrency: 1,
    logger: createLogger({ level: 'info', destination: logStream }),
  });
  const control = await RawClient.connect(ctx.port);
  let started: Promise<void> | undefined;
  const ensureStarted = (): Promise<void> => {
    started ??= worker.start();
    return started;
  };

  const measure = async (samples: number): Promise<number[]> => {
    const latenciesMs: number[] = [];
    for (let i = 0; i < samples; i += 1) {
      await waitForWaiting(control, tube, 1, { intervalMs: 0 });
      const taskStarted = new Promise<number>((resolve) => {
        onStart = resolve;
      });
      const start = performance.now();
      const put = task.put(KWARGS);
      const at = await taskStarted;
      await put;
      latenciesMs.push(at - start);
    }
    return latenciesMs;
  };

  return {
    scenarios: [
      {
        name: LATENCY.worker,
        group: 'latency',
        label: 'bsworker put() -> task start latency (in-process Worker, -c 1)',
        baseline: RAW.latency,
        measuredWith: RAW.latency,
        note: `${ctx.sizes.latencySamples.toLocaleString('en-US')} samples per run, in ${PARTS_PER_RUN} parts alternating with the raw client's; jobs/s = 1 / mean latency`,
        warmup: async () => {
          await ensureStarted();
          await measure(Math.min(ctx.sizes.latencySamples, 200));
        },
        part: async () => {
          await ensureStarted();
          const latenciesMs = await measure(Math.ceil(ctx.sizes.latencySamples / PARTS_PER_RUN));
          return { jobs: latenciesMs.length, elapsedMs: 0, latenciesMs };
        },
      },
    ],
    close: async () => {
      if (started) await worker.stop({ force: true });
      await queue.close();
      control.close();
      await new Promise<void>((resolve) => logStream.end(resolve));
    },
  };
}
