/**
 * The worker's curves, each against the raw consumer in the same run (opt-in: `--only drain-sizes`,
 * `drain-backlog`, `drain-tubes`; none is in the default run):
 * - **drain-sizes**: bsworker `-c 16` draining bodies of 100 B to 60 KB of kwargs (arrays of ~100-byte
 *   records, one long string), next to the raw pipelined reserve+delete of the same bodies and the
 *   floor of a consumer that must read what it runs (the raw consumer plus one `JSON.parse` per body).
 *   Each worker drains a cold batch first (a worker that has run nothing yet: `coldJobsPerSecond`),
 *   then the timed, warm one.
 * - **drain-backlog**: the same with 10k, 100k and 500k jobs waiting (~100-byte kwargs).
 * - **drain-tubes**: a worker watching 1, 10 and 100 tubes, the jobs spread over them, with its
 *   start-up time next to a raw client's (connect, pipelined `watch`es, a waiting reserve).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeEnvelope } from '../../src/index.js';
import { pipelinePuts, pipelineReserveDelete, putCommand, RawClient } from '../../test/helpers/raw-client.js';
import { childEnv } from '../children.js';
import { type BenchContext, freshTube, REPO, type Sample, type Scenario, type ScenarioGroup, sample } from '../context.js';
import { measureDrain } from '../measure-drain.js';
import { envelopeBody, NOOP_TASK } from '../payload.js';
import { waitForWaiting } from '../poll.js';
import { type TargetResult, target } from '../report.js';
import { kwargsOf, SHAPES, type Shape, SIZE_CURVE } from '../shapes.js';
import { PUT_WINDOW, RESERVE_WINDOW } from './raw.js';

/** The worker's concurrency on every curve: the issue's `-c 16`. */
export const CURVE_CONCURRENCY = 16;
/** Bytes of bodies per timed drain: enough jobs to time at 60 KB, few enough to keep beanstalkd small. */
const BYTES_PER_RUN = 64 * 2 ** 20;
/** The fewest jobs a drain times, whatever the size. */
const MIN_JOBS = 2_000;
/** The backlogs of the full run; `--quick` and `--jobs` scale them with the run's job count. */
const BACKLOGS = [10_000, 100_000, 500_000] as const;
/** How much a worker's start-up may grow from 1 to 100 tubes: pipelined round trips, not one per tube. */
const STARTUP_GROWTH_MS = 50;
/** The watched-tube counts. */
const TUBE_COUNTS = [1, 10, 100] as const;

/** Scenario names. */
export const DRAIN_CURVE = Object.freeze({
  raw: (shape: Shape, size: string) => `drain-sizes-raw-${shape}-${size}`,
  floor: (shape: Shape, size: string) => `drain-sizes-floor-${shape}-${size}`,
  worker: (shape: Shape, size: string) => `drain-sizes-worker-${shape}-${size}`,
  backlogRaw: (jobs: number) => `drain-backlog-raw-${jobs}`,
  backlogWorker: (jobs: number) => `drain-backlog-worker-${jobs}`,
  tubesRaw: (tubes: number) => `drain-tubes-raw-${tubes}`,
  tubesWorker: (tubes: number) => `drain-tubes-worker-${tubes}`,
});

const BIN = join(REPO, 'bin', 'bsworker');
const JOBS_DIR = join(REPO, 'bench', 'jobs');

/** The three curve groups; nothing runs, and no connection opens, until a scenario is selected. */
export function drainCurveGroup(ctx: BenchContext): ScenarioGroup {
  const scenarios: Scenario[] = [];
  for (const shape of SHAPES) {
    for (const { label, bytes } of SIZE_CURVE) {
      const kwargs = kwargsOf(shape, bytes);
      const bodyOf = (tube: string): Buffer => encodeEnvelope(NOOP_TASK, tube, kwargs);
      const size = bodyOf('bench-drain-sizes-00000000').length;
      const jobs = Math.min(ctx.sizes.jobs, Math.max(Math.min(MIN_JOBS, ctx.sizes.jobs), Math.floor(BYTES_PER_RUN / size)));
      const what = `${shape === 'records' ? 'records' : 'one string'}, ${size.toLocaleString('en-US')}-byte bodies`;
      const raw = DRAIN_CURVE.raw(shape, label);
      scenarios.push(
        {
          name: raw,
          group: 'drain-sizes',
          label: `raw reserve+delete, pipelined: ${what}`,
          baseline: raw,
          note: `${jobs.toLocaleString('en-US')} jobs per run`,
          run: () => rawDrain(ctx, [freshTube('drain-sizes-raw')], bodyOf, jobs),
        },
        {
          name: DRAIN_CURVE.worker(shape, label),
          group: 'drain-sizes',
          label: `bsworker drain -c ${CURVE_CONCURRENCY}, warm: ${what}`,
          baseline: raw,
          measuredWith: raw,
          run: () => workerDrain(ctx, 1, bodyOf, jobs, jobs),
        },
        {
          name: DRAIN_CURVE.floor(shape, label),
          group: 'drain-sizes',
          label: `floor: raw reserve+delete + JSON.parse of each body: ${what}`,
          baseline: raw,
          run: () => rawDrain(ctx, [freshTube('drain-sizes-floor')], bodyOf, jobs, parseBody),
        },
      );
    }
  }
  const scale = ctx.sizes.jobs / 50_000;
  for (const full of BACKLOGS) {
    const jobs = Math.max(100, Math.round(full * scale));
    const raw = DRAIN_CURVE.backlogRaw(full);
    scenarios.push(
      {
        name: raw,
        group: 'drain-backlog',
        label: `raw reserve+delete, pipelined: ${jobs.toLocaleString('en-US')} jobs waiting`,
        baseline: raw,
        run: () => rawDrain(ctx, [freshTube('drain-backlog-raw')], envelopeBody, jobs),
      },
      {
        name: DRAIN_CURVE.backlogWorker(full),
        group: 'drain-backlog',
        label: `bsworker drain -c ${CURVE_CONCURRENCY}, warm: ${jobs.toLocaleString('en-US')} jobs waiting`,
        baseline: raw,
        measuredWith: raw,
        run: () => workerDrain(ctx, 1, envelopeBody, jobs, Math.min(jobs, ctx.sizes.jobs)),
      },
    );
  }
  for (const count of TUBE_COUNTS) {
    const raw = DRAIN_CURVE.tubesRaw(count);
    scenarios.push(
      {
        name: raw,
        group: 'drain-tubes',
        label: `raw reserve+delete, pipelined: ${count} watched tube(s)`,
        baseline: raw,
        note: 'startupMs: connect, pipelined watches, one waiting reserve',
        run: () =>
          rawDrain(
            ctx,
            Array.from({ length: count }, () => freshTube('drain-tubes-raw')),
            envelopeBody,
            ctx.sizes.jobs,
          ),
      },
      {
        name: DRAIN_CURVE.tubesWorker(count),
        group: 'drain-tubes',
        label: `bsworker drain -c ${CURVE_CONCURRENCY}, cold: ${count} watched tube(s)`,
        baseline: raw,
        measuredWith: raw,
        note: 'startupMs: spawn to a reserve waiting on every tube (includes loading Node and the jobs)',
        run: () => workerDrain(ctx, count, envelopeBody, ctx.sizes.jobs, 0),
      },
    );
  }
  return { scenarios, close: async () => undefined };
}

/** The floor's per-body work: what every worker must do at least (decode the text, parse it). */
function parseBody(body: Buffer): void {
  JSON.parse(body.toString('utf8'));
}

/**
 * One bsworker `-c 16` drain over `tubes` fresh tubes: `coldJobs` drained first (0: the timed drain is
 * the cold one), then `jobs` timed.
 */
async function workerDrain(
  ctx: BenchContext,
  tubeCount: number,
  bodyOf: (tube: string) => Buffer,
  jobs: number,
  coldJobs: number,
): Promise<Sample> {
  const tubes = Array.from({ length: tubeCount }, () => freshTube('drain-curve'));
  const tube = tubes[0] as string;
  return measureDrain(ctx, {
    command: process.execPath,
    args: [BIN, '--tubes', tubes.join(','), '--jobs', JOBS_DIR, '--url', ctx.url, '--concurrency', String(CURVE_CONCURRENCY)],
    cwd: REPO,
    env: childEnv({ BSWORKER_BENCH_TUBE: tubes.join(',') }),
    tube,
    tubes,
    body: bodyOf,
    jobs,
    warmJobs: coldJobs,
    waiting: 1,
    logFile: join(ctx.tmpDir, `${tube}.log`),
    expectCleanExit: true,
  });
}

/**
 * The raw consumer on `tubes` (prefilled, untimed; jobs split evenly): `startupMs` is its connect,
 * pipelined watches and first waiting reserve; `cpuUsPerJob` is this process's CPU during the drain
 * (nothing else runs in it then); `onBody` sees each body (the floor's parse).
 */
async function rawDrain(
  ctx: BenchContext,
  tubes: readonly string[],
  bodyOf: (tube: string) => Buffer,
  jobs: number,
  onBody?: (body: Buffer) => void,
): Promise<Sample> {
  const filler = await RawClient.connect(ctx.port);
  let consumer: RawClient | undefined;
  try {
    for (const [i, tube] of tubes.entries()) {
      const share = Math.floor(jobs / tubes.length) + (i < jobs % tubes.length ? 1 : 0);
      await filler.expect(`use ${tube}\r\n`, 'USING');
      await filler.expect(`pause-tube ${tube} 3600\r\n`, 'PAUSED');
      if (share > 0) await pipelinePuts(filler, putCommand(bodyOf(tube)), share, PUT_WINDOW);
    }
    const started = performance.now();
    consumer = await RawClient.connect(ctx.port);
    const watching = tubes.map((tube) => consumer?.expect(`watch ${tube}\r\n`, 'WATCHING'));
    watching.push(consumer.expect('ignore default\r\n', 'WATCHING'));
    await Promise.all(watching);
    // One waiting reserve, as a worker keeps when idle; it takes the first job once the tubes unpause.
    const first = consumer.request('reserve\r\n');
    for (const tube of tubes) await waitForWaiting(filler, tube, 1, { intervalMs: 1 });
    const startupMs = performance.now() - started;

    const cpu = process.cpuUsage();
    const start = performance.now();
    for (const tube of tubes) await filler.expect(`pause-tube ${tube} 0\r\n`, 'PAUSED');
    const reply = await first;
    if (!reply.line.startsWith('RESERVED ')) throw new Error(`reserve: expected RESERVED, got ${reply.line}`);
    if (onBody) onBody(reply.body as Buffer);
    await consumer.expect(`delete ${reply.line.split(' ')[1]}\r\n`, 'DELETED');
    await pipelineReserveDelete(consumer, jobs - 1, RESERVE_WINDOW, onBody);
    const elapsed = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return sample(jobs, elapsed, { startupMs, cpuUsPerJob: (used.user + used.system) / jobs });
  } finally {
    filler.close();
    consumer?.close();
  }
}

/** The drain targets on the curves, from this run's medians; none when no curve ran. */
export function drainCurveTargets(figure: (name: string, field?: string) => number | undefined): TargetResult[] {
  const ratio = (top: number | undefined, bottom: number | undefined): number | undefined =>
    top === undefined || bottom === undefined ? undefined : top / bottom;
  const targets: TargetResult[] = [];
  for (const [label, limit] of [
    ['8KB', 0.5],
    ['60KB', 0.35],
  ] as const) {
    const raw = figure(DRAIN_CURVE.raw('records', label));
    if (raw === undefined) continue;
    const worker = figure(DRAIN_CURVE.worker('records', label));
    const floor = ratio(figure(DRAIN_CURVE.floor('records', label)), raw);
    targets.push(
      target(
        `drain -c ${CURVE_CONCURRENCY} (warm) / raw drain at ${label} (records)`,
        ratio(worker, raw),
        '>=',
        limit,
        `floor (raw + one JSON.parse per body) / raw = ${floor === undefined ? 'n/a' : floor.toFixed(2)}; worker ${figure(DRAIN_CURVE.worker('records', label), 'cpuUsPerJob')?.toFixed(1) ?? 'n/a'} us CPU per job, raw ${figure(DRAIN_CURVE.raw('records', label), 'cpuUsPerJob')?.toFixed(1) ?? 'n/a'} us`,
      ),
    );
  }
  const one = figure(DRAIN_CURVE.tubesWorker(1), 'startupMs');
  const hundred = figure(DRAIN_CURVE.tubesWorker(100), 'startupMs');
  if (one !== undefined && hundred !== undefined) {
    const rawOne = figure(DRAIN_CURVE.tubesRaw(1), 'startupMs') ?? Number.NaN;
    const rawHundred = figure(DRAIN_CURVE.tubesRaw(100), 'startupMs') ?? Number.NaN;
    targets.push(
      target(
        'worker start-up with 100 tubes minus with 1, ms (pipelined round trips: a few ms)',
        hundred - one,
        '<=',
        STARTUP_GROWTH_MS,
        `the raw client's: ${(rawHundred - rawOne).toFixed(1)} ms`,
      ),
    );
  }
  return targets;
}
