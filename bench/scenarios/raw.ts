/**
 * The raw limits: what a minimal client on a plain socket gets out of this beanstalkd on this machine.
 * Every bsworker figure is divided by one of these, measured in the same run, so the ratios hold
 * across machines even where the jobs/s do not.
 */
import { performance } from 'node:perf_hooks';
import {
  insertedId,
  pipelineDeletes,
  pipelinePuts,
  pipelineReserveDelete,
  putCommand,
  RawClient,
  type Reply,
} from '../../test/helpers/raw-client.js';
import { type BenchContext, freshTube, PARTS_PER_RUN, type Sample, type ScenarioGroup, sample } from '../context.js';
import { envelopeBody } from '../payload.js';
import { waitForWaiting } from '../poll.js';

/** Unanswered puts at a time: deep enough to keep beanstalkd busy, shallow enough to bound memory. */
export const PUT_WINDOW = 1024;
/** Unanswered reserves at a time on the consumer connection. */
export const RESERVE_WINDOW = 64;

/** Scenario names other groups divide by. */
export const RAW = Object.freeze({
  putPipelined: 'raw-put-pipelined',
  putOneAtATime: 'raw-put-one-at-a-time',
  reserveDelete: 'raw-reserve-delete-pipelined',
  latency: 'raw-latency',
});

/** The raw scenarios. Their connections open lazily, in the warm-up. */
export async function rawGroup(ctx: BenchContext): Promise<ScenarioGroup> {
  const tube = freshTube('raw');
  const put = putCommand(envelopeBody(tube));
  const producer = await RawClient.connect(ctx.port);
  await producer.expect(`use ${tube}\r\n`, 'USING');
  const { jobs, oneAtATimeJobs, latencySamples } = ctx.sizes;
  const partJobs = Math.ceil(oneAtATimeJobs / PARTS_PER_RUN);
  let latency: Promise<RawLatencyProbe> | undefined;

  return {
    scenarios: [
      {
        name: RAW.putPipelined,
        group: 'raw',
        label: `raw put, pipelined (${PUT_WINDOW} in flight)`,
        baseline: RAW.putPipelined,
        warmup: async () => pipelineDeletes(producer, await pipelinePuts(producer, put, Math.min(jobs, 5_000), PUT_WINDOW)),
        run: async () => {
          const start = performance.now();
          const ids = await pipelinePuts(producer, put, jobs, PUT_WINDOW);
          const elapsed = performance.now() - start;
          // Emptied between runs so every run puts into the same, empty tube.
          await pipelineDeletes(producer, ids);
          return sample(jobs, elapsed);
        },
      },
      {
        name: RAW.putOneAtATime,
        group: 'raw',
        label: 'raw put, one at a time',
        baseline: RAW.putOneAtATime,
        note: `${oneAtATimeJobs.toLocaleString('en-US')} jobs per run, in ${PARTS_PER_RUN} parts alternating with bsworker's`,
        part: async () => {
          const ids: string[] = [];
          const start = performance.now();
          for (let i = 0; i < partJobs; i += 1) ids.push(insertedId(await producer.request(put)));
          const elapsedMs = performance.now() - start;
          await pipelineDeletes(producer, ids);
          return { jobs: partJobs, elapsedMs };
        },
      },
      {
        name: RAW.reserveDelete,
        group: 'raw',
        label: `raw reserve-with-timeout 0 + delete, pipelined (${RESERVE_WINDOW} reserves in flight)`,
        baseline: RAW.reserveDelete,
        run: () => reserveDeleteRun(ctx, jobs),
      },
      {
        name: RAW.latency,
        group: 'raw',
        label: 'raw put -> RESERVED latency',
        baseline: RAW.latency,
        note: `${latencySamples.toLocaleString('en-US')} samples per run, in ${PARTS_PER_RUN} parts alternating with bsworker's; jobs/s = 1 / mean latency`,
        part: async () => {
          latency ??= RawLatencyProbe.open(ctx.port);
          const latenciesMs = await (await latency).measure(Math.ceil(latencySamples / PARTS_PER_RUN));
          return { jobs: latenciesMs.length, elapsedMs: 0, latenciesMs };
        },
      },
    ],
    close: async () => {
      producer.close();
      (await latency)?.close();
    },
  };
}

/** Prefills a fresh tube (untimed), then times one connection reserving and deleting all of it. */
async function reserveDeleteRun(ctx: BenchContext, jobs: number): Promise<Sample> {
  const tube = freshTube('raw-drain');
  const [filler, consumer] = await Promise.all([RawClient.connect(ctx.port), RawClient.connect(ctx.port)]);
  try {
    await filler.expect(`use ${tube}\r\n`, 'USING');
    await pipelinePuts(filler, putCommand(envelopeBody(tube)), jobs, PUT_WINDOW);
    await consumer.expect(`watch ${tube}\r\n`, 'WATCHING');
    await consumer.expect('ignore default\r\n', 'WATCHING');
    const start = performance.now();
    await pipelineReserveDelete(consumer, jobs, RESERVE_WINDOW);
    return sample(jobs, performance.now() - start);
  } finally {
    filler.close();
    consumer.close();
  }
}

/**
 * put -> RESERVED latency: one connection has a `reserve` waiting, another puts; the time runs from the
 * put's write to the RESERVED reply. Before each sample the server must report the reserve as waiting,
 * so a sample never includes the consumer's own delete-and-reserve round trip.
 */
class RawLatencyProbe {
  private constructor(
    private readonly tube: string,
    private readonly producer: RawClient,
    private readonly consumer: RawClient,
    private readonly control: RawClient,
  ) {}

  static async open(port: number): Promise<RawLatencyProbe> {
    const tube = freshTube('raw-latency');
    const [producer, consumer, control] = await Promise.all([RawClient.connect(port), RawClient.connect(port), RawClient.connect(port)]);
    const probe = new RawLatencyProbe(tube, producer, consumer, control);
    try {
      await consumer.expect(`watch ${tube}\r\n`, 'WATCHING');
      await consumer.expect('ignore default\r\n', 'WATCHING');
      await producer.expect(`use ${tube}\r\n`, 'USING');
    } catch (error) {
      probe.close();
      throw error;
    }
    return probe;
  }

  /** Takes `samples` put -> RESERVED samples, one job at a time; resolves to them in milliseconds. */
  async measure(samples: number): Promise<number[]> {
    const { tube, producer, consumer, control } = this;
    const put = putCommand(envelopeBody(tube));
    const latenciesMs: number[] = [];
    for (let i = 0; i < samples; i += 1) {
      let reservedAt = 0;
      const reserved = new Promise<Reply>((resolve) => {
        consumer.send('reserve-with-timeout 10\r\n', (reply) => {
          reservedAt = performance.now();
          resolve(reply);
        });
      });
      await waitForWaiting(control, tube, 1, { intervalMs: 0 });
      const start = performance.now();
      const inserted = producer.request(put);
      const reply = await reserved;
      if (!reply.line.startsWith('RESERVED ')) throw new Error(`raw latency: expected RESERVED, got ${reply.line}`);
      latenciesMs.push(reservedAt - start);
      insertedId(await inserted);
      await consumer.expect(`delete ${reply.line.split(' ')[1]}\r\n`, 'DELETED');
    }
    return latenciesMs;
  }

  close(): void {
    this.producer.close();
    this.consumer.close();
    this.control.close();
  }
}
