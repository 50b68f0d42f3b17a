/**
 * Times a worker process draining a prefilled tube, excluding its start-up.
 *
 * The jobs go into a paused tube (`pause-tube <tube> 3600`), the worker starts, and the clock starts
 * only once beanstalkd reports every one of its reserves waiting on that tube; then `pause-tube <tube> 0`
 * releases them all at once. On beanstalkd 1.12 that is prompt: a pause of 0 is stored as 1 ns
 * (prot.c: "Always pause for a positive amount of time, to make sure that waiting clients wake up"),
 * and the server's next tick unpauses the tube and hands jobs to the waiting reserves; measured here at
 * about 0.3 ms from the write to the RESERVED replies. The clock stops when the tube's `cmd-delete` has
 * grown by the number of jobs (polled every 5 ms on a raw connection: the worker is another process,
 * and the server is the only witness).
 *
 * With `warmJobs`, the worker first drains a batch of that many (timed too: the cold figure, from a
 * worker that has run nothing yet), then the tube is paused again, refilled, and the timed drain is the
 * warm one. Every drain also reports how long the worker took to start (spawn to its reserves waiting)
 * and how long the drain took to reach full speed (see {@link rampMs}).
 */
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { pipelinePuts, putCommand, RawClient } from '../test/helpers/raw-client.js';
import type { BenchContext, Sample } from './context.js';
import { sample } from './context.js';
import { cpuTimeMs } from './cpu.js';
import { tubeCounter, waitForWaiting, waitUntil } from './poll.js';
import { RssSampler } from './rss.js';

/** Options of {@link measureDrain}. */
export interface DrainOptions {
  /** The worker's command line. Its stdout goes to `logFile`, so log writes cost what they cost. */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** A fresh tube, named in the worker's arguments or environment. */
  readonly tube: string;
  /**
   * Every tube the worker watches, when more than `tube`: the jobs are split evenly over them (the
   * first tubes take the remainder). @defaultValue `[tube]`
   */
  readonly tubes?: readonly string[];
  /** The body of every job; a function gives each tube its own (an envelope names its tube). */
  readonly body: Buffer | ((tube: string) => Buffer);
  readonly jobs: number;
  /**
   * A batch drained before the timed one, by the same worker: its rate is `coldJobsPerSecond` (and
   * `coldRampMs`), the timed drain's is the warm one. @defaultValue 0, the timed drain is cold
   */
  readonly warmJobs?: number;
  /** How many reserves the worker keeps waiting when idle: the clock waits for all of them. */
  readonly waiting: number;
  readonly logFile: string;
  /** Sample the worker's VmRSS every 20 ms while it drains (Linux only). */
  readonly sampleRss?: boolean;
  /** Fail unless the worker exits with code 0 after SIGTERM (bsworker's graceful stop). */
  readonly expectCleanExit?: boolean;
  /**
   * The servers' ports when the worker drains several: the jobs are split evenly over them, and
   * `waiting` reserves are awaited on each. @defaultValue the bench's one server
   */
  readonly ports?: readonly number[];
}

/** How often the drain's progress is polled. */
const POLL_MS = 5;
/** A drain that deletes nothing for this long has stalled (a crashed or stuck worker). */
const STALL_MS = 30_000;
/** Start-up (tsx loading the jobs directory) on a busy 2-core machine. */
const START_TIMEOUT_MS = 60_000;
/** The window over which the ramp's rate is taken: long enough to smooth the 5 ms polls. */
const RAMP_WINDOW_MS = 100;
/** "Full speed": this share of the rate over the middle half of the drain. */
const FULL_SPEED_SHARE = 0.9;

/** One poll of the drain: milliseconds since the clock started, and jobs deleted by then. */
interface Progress {
  readonly ms: number;
  readonly deleted: number;
}

/**
 * Prefills, starts the worker, times the drain, stops the worker. The Sample carries `logLines` (lines
 * the worker wrote), `completedLines` (those saying "job completed"), `cpuUsPerJob` (the worker
 * process's user + system CPU during the timed drain, per job; single-process drains on Linux),
 * `startupMs` (spawn to every reserve waiting), `rampMs` (see {@link rampMs}), with `warmJobs` the cold
 * batch's `coldJobsPerSecond` and `coldRampMs`, and, when sampled, `maxRssMb` and `idleRssMb` (before
 * the drain).
 */
export async function measureDrain(ctx: BenchContext, options: DrainOptions): Promise<Sample> {
  const { tube, jobs } = options;
  const tubes = options.tubes ?? [tube];
  const ports = options.ports ?? [ctx.port];
  const bodyOf = typeof options.body === 'function' ? options.body : () => options.body as Buffer;
  const controls = await Promise.all(ports.map((port) => RawClient.connect(port)));
  // The `use`d tube of each control connection, so that a refill does not repeat it.
  const using = new Map<RawClient, string>();
  let worker: ReturnType<BenchContext['children']['spawn']> | undefined;
  const pauseAll = async (seconds: number): Promise<void> => {
    await Promise.all(
      controls.map(async (each) => Promise.all(tubes.map((name) => each.expect(`pause-tube ${name} ${seconds}\r\n`, 'PAUSED')))),
    );
  };
  // An even split over servers and tubes; the first take the remainder. Each tube is paused before its
  // first put (a tube exists only while it is used, watched or holds jobs: it is paused once `use`d).
  const fill = async (count: number): Promise<void> => {
    const parts = controls.length * tubes.length;
    let part = 0;
    for (const each of controls) {
      for (const name of tubes) {
        const share = Math.floor(count / parts) + (part < count % parts ? 1 : 0);
        part += 1;
        if (share === 0) continue;
        if (using.get(each) !== name) {
          await each.expect(`use ${name}\r\n`, 'USING');
          await each.expect(`pause-tube ${name} 3600\r\n`, 'PAUSED');
          using.set(each, name);
        }
        await pipelinePuts(each, putCommand(bodyOf(name)), share);
      }
    }
  };
  try {
    const warmJobs = options.warmJobs ?? 0;
    // With a cold batch, the timed one is put only once the cold one is gone: a worker reserves ahead,
    // so jobs of a batch put behind it would be taken before their clock starts.
    await fill(warmJobs > 0 ? warmJobs : jobs);

    // O_APPEND: with --processes, several processes share this file through the supervisor's stdout.
    const logFd = openSync(options.logFile, 'a');
    const spawnedAt = performance.now();
    try {
      worker = ctx.children.spawn(options.command, options.args, {
        cwd: options.cwd,
        env: options.env,
        stdio: ['ignore', logFd, 'pipe'],
      });
    } finally {
      closeSync(logFd);
    }
    const running = worker;
    const exitedEarly = (): string | undefined =>
      running.exit ? `the worker exited (${JSON.stringify(running.exit)}): ${running.stderr().trim() || 'no stderr'}` : undefined;
    // One tube is polled until its reserve waits, then every tube once (pipelined on each control
    // connection): polling a hundred tubes every few milliseconds loaded the two cores the worker was
    // starting on, and one tube after another added a hundred round trips of the bench's own.
    const waitForWorker = async (): Promise<void> => {
      const poll = { intervalMs: POLL_MS, timeoutMs: START_TIMEOUT_MS, abort: exitedEarly };
      const last = tubes[tubes.length - 1] as string;
      await Promise.all(controls.map((each) => waitForWaiting(each, last, options.waiting, poll)));
      await Promise.all(controls.flatMap((each) => tubes.map((name) => waitForWaiting(each, name, options.waiting, poll))));
    };
    await waitForWorker();
    const extra: Record<string, number> = { startupMs: performance.now() - spawnedAt };
    const deletes = async (): Promise<number> => {
      let sum = 0;
      for (const each of controls) for (const name of tubes) sum += await tubeCounter(each, name, 'cmd-delete');
      return sum;
    };
    /** Unpauses, waits for `count` more deletes, answers the polls (the clock starts at the unpause). */
    const drain = async (count: number): Promise<Progress[]> => {
      const before = await deletes();
      const progress: Progress[] = [];
      const start = performance.now();
      await pauseAll(0);
      let lastDeleted = before;
      let lastProgress = performance.now();
      await waitUntil(
        async () => {
          const deleted = await deletes();
          const now = performance.now();
          progress.push({ ms: now - start, deleted: deleted - before });
          if (deleted !== lastDeleted) {
            lastDeleted = deleted;
            lastProgress = now;
          }
          return deleted - before >= count;
        },
        {
          intervalMs: POLL_MS,
          timeoutMs: Number.MAX_SAFE_INTEGER,
          what: `${count} deletes in ${tubes.length === 1 ? tube : `${tubes.length} tubes`}`,
          abort: () =>
            exitedEarly() ??
            (performance.now() - lastProgress > STALL_MS
              ? `no job deleted for ${STALL_MS} ms (${lastDeleted - before} of ${count})`
              : undefined),
        },
      );
      return progress;
    };

    if (warmJobs > 0) {
      const cold = await drain(warmJobs);
      const last = cold[cold.length - 1] as Progress;
      extra.coldJobsPerSecond = (warmJobs * 1000) / last.ms;
      extra.coldRampMs = rampMs(cold, warmJobs);
      // Paused again, so that the warm batch waits for its clock as the cold one did.
      await pauseAll(3600);
      await fill(jobs);
      await waitForWorker();
    }
    const rss = options.sampleRss ? new RssSampler(running.pid) : undefined;
    const cpuBefore = cpuTimeMs(running.pid);
    const progress = await drain(jobs);
    const elapsed = (progress[progress.length - 1] as Progress).ms;
    const cpuAfter = cpuTimeMs(running.pid);
    const maxRssMb = rss?.stop();
    extra.rampMs = rampMs(progress, jobs);

    const exit = await running.stop();
    if (options.expectCleanExit && exit.code !== 0) {
      throw new Error(`the worker exited with ${JSON.stringify(exit)} after SIGTERM: ${running.stderr().trim() || 'no stderr'}`);
    }
    const log = await readFile(options.logFile, 'utf8');
    const lines = log.split('\n').filter((line) => line !== '');
    extra.logLines = lines.length;
    extra.completedLines = lines.filter((line) => line.includes('job completed')).length;
    if (maxRssMb !== undefined) extra.maxRssMb = maxRssMb;
    if (rss?.startMb !== undefined) extra.idleRssMb = rss.startMb;
    // The worker process's own CPU (with --processes, the supervisor's, which runs no job: not reported).
    if (cpuBefore !== undefined && cpuAfter !== undefined && !options.args.includes('--processes')) {
      extra.cpuUsPerJob = ((cpuAfter - cpuBefore) * 1000) / jobs;
    }
    return sample(jobs, elapsed, extra);
  } finally {
    await worker?.stop();
    for (const each of controls) each.close();
  }
}

/**
 * How long a drain took to reach full speed, in ms from the unpause: the start of the first
 * {@link RAMP_WINDOW_MS} window whose rate reaches {@link FULL_SPEED_SHARE} of the rate over the
 * middle half of the jobs (25% to 75% deleted). A drain too short to tell answers its whole length.
 */
export function rampMs(progress: readonly Progress[], jobs: number): number {
  const at = (share: number): Progress | undefined => progress.find((p) => p.deleted >= share * jobs);
  const from = at(0.25);
  const to = at(0.75);
  const last = progress[progress.length - 1];
  if (!from || !to || !last || to.ms <= from.ms) return last?.ms ?? Number.NaN;
  const full = (to.deleted - from.deleted) / (to.ms - from.ms);
  let j = 0;
  // A window starts at a poll (or the unpause itself, deleted 0 at 0 ms) and ends at the first poll
  // RAMP_WINDOW_MS or more later.
  const points: Progress[] = [{ ms: 0, deleted: 0 }, ...progress];
  for (let i = 0; i < points.length; i += 1) {
    const start = points[i] as Progress;
    while (j < points.length && (points[j] as Progress).ms < start.ms + RAMP_WINDOW_MS) j += 1;
    if (j >= points.length) break;
    const end = points[j] as Progress;
    if ((end.deleted - start.deleted) / (end.ms - start.ms) >= FULL_SPEED_SHARE * full) return start.ms;
  }
  return last.ms;
}
