/**
 * The producer, in-process: a JobQueue from src/ with a task in a bench tube, putting the same body the
 * raw client puts. Its jobs are deleted after each run (untimed), so every run puts into an empty tube.
 */
import { performance } from 'node:perf_hooks';
import { createLogger, JobQueue } from '../../src/index.js';
import { pipelineDeletes, RawClient } from '../../test/helpers/raw-client.js';
import { type BenchContext, freshTube, PARTS_PER_RUN, type Sample, type ScenarioGroup, sample } from '../context.js';
import { type BenchKwargs, KWARGS } from '../payload.js';
import { RAW } from './raw.js';

/** Scenario names the report refers to. */
export const PRODUCER = Object.freeze({
  oneAtATime: 'producer-put-one-at-a-time',
  inFlight: 'producer-put-in-flight',
  putMany: 'producer-put-many',
});

/** The producer scenarios. One JobQueue (one connection) serves all of them, as in an application. */
export async function producerGroup(ctx: BenchContext): Promise<ScenarioGroup> {
  const tube = freshTube('producer');
  // Silent: the queue only logs when the server is unreachable, and the table owns stdout.
  const queue = new JobQueue({ url: ctx.url, logger: createLogger({ level: 'silent' }) });
  const task = queue.task(tube)(async function benchProducerNoop(_kw: BenchKwargs) {});
  const cleaner = await RawClient.connect(ctx.port);
  const { jobs, oneAtATimeJobs } = ctx.sizes;
  const partJobs = Math.ceil(oneAtATimeJobs / PARTS_PER_RUN);
  const many = Array.from({ length: jobs }, () => KWARGS);

  /** Times `put`, then deletes what it put. */
  const timed = async (count: number, put: () => Promise<string[]>): Promise<Sample> => {
    const start = performance.now();
    const ids = await put();
    const elapsed = performance.now() - start;
    if (ids.length !== count) throw new Error(`expected ${count} job ids, got ${ids.length}`);
    await pipelineDeletes(cleaner, ids);
    return sample(count, elapsed);
  };
  const oneAtATime = async (count: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) ids.push(await task.put(KWARGS));
    return ids;
  };
  const inFlight = (count: number): Promise<string[]> => Promise.all(Array.from({ length: count }, () => task.put(KWARGS)));

  return {
    scenarios: [
      {
        name: PRODUCER.oneAtATime,
        group: 'producer',
        label: 'bsworker put(), awaited one at a time',
        baseline: RAW.putOneAtATime,
        measuredWith: RAW.putOneAtATime,
        note: `${oneAtATimeJobs.toLocaleString('en-US')} jobs per run, in ${PARTS_PER_RUN} parts alternating with the raw client's`,
        // Opens the queue's connection (and its `stats` round trip) and warms the JIT, untimed.
        warmup: async () => {
          await pipelineDeletes(cleaner, await oneAtATime(Math.min(oneAtATimeJobs, 2_000)));
        },
        part: async () => {
          const start = performance.now();
          const ids = await oneAtATime(partJobs);
          const elapsedMs = performance.now() - start;
          await pipelineDeletes(cleaner, ids);
          return { jobs: partJobs, elapsedMs };
        },
      },
      {
        name: PRODUCER.inFlight,
        group: 'producer',
        label: `bsworker put(), all ${jobs.toLocaleString('en-US')} in flight (Promise.all)`,
        baseline: RAW.putPipelined,
        warmup: async () => {
          await pipelineDeletes(cleaner, await inFlight(Math.min(jobs, 5_000)));
        },
        run: () => timed(jobs, () => inFlight(jobs)),
      },
      {
        name: PRODUCER.putMany,
        group: 'producer',
        label: 'bsworker putMany(kwargsArray)',
        baseline: RAW.putPipelined,
        warmup: async () => {
          await pipelineDeletes(cleaner, await task.putMany(many.slice(0, 5_000)));
        },
        // The default window (1024 puts unanswered), the same as the raw pipelined put's.
        run: () => timed(jobs, () => task.putMany(many)),
      },
    ],
    close: async () => {
      cleaner.close();
      await queue.close();
    },
  };
}
