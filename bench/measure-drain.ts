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
  readonly body: Buffer;
  readonly jobs: number;
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

/**
 * Prefills, starts the worker, times the drain, stops the worker. The Sample carries `logLines` (lines
 * the worker wrote), `completedLines` (those saying "job completed"), `cpuUsPerJob` (the worker
 * process's user + system CPU during the drain, per job; single-process drains on Linux) and, when
 * sampled, `maxRssMb` and `idleRssMb` (before the drain).
 */
export async function measureDrain(ctx: BenchContext, options: DrainOptions): Promise<Sample> {
  const { tube, jobs } = options;
  const ports = options.ports ?? [ctx.port];
  const controls = await Promise.all(ports.map((port) => RawClient.connect(port)));
  let worker: ReturnType<BenchContext['children']['spawn']> | undefined;
  try {
    for (const [i, each] of controls.entries()) {
      await each.expect(`use ${tube}\r\n`, 'USING');
      await each.expect(`pause-tube ${tube} 3600\r\n`, 'PAUSED');
      // An even split; the first servers take the remainder.
      await pipelinePuts(each, putCommand(options.body), Math.floor(jobs / controls.length) + (i < jobs % controls.length ? 1 : 0));
    }

    // O_APPEND: with --processes, several processes share this file through the supervisor's stdout.
    const logFd = openSync(options.logFile, 'a');
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
    for (const each of controls) {
      await waitForWaiting(each, tube, options.waiting, { intervalMs: POLL_MS, timeoutMs: START_TIMEOUT_MS, abort: exitedEarly });
    }
    const deletes = async (): Promise<number> => {
      let sum = 0;
      for (const each of controls) sum += await tubeCounter(each, tube, 'cmd-delete');
      return sum;
    };

    const deletedBefore = await deletes();
    const rss = options.sampleRss ? new RssSampler(running.pid) : undefined;
    const cpuBefore = cpuTimeMs(running.pid);
    const start = performance.now();
    await Promise.all(controls.map((each) => each.expect(`pause-tube ${tube} 0\r\n`, 'PAUSED')));
    let lastDeleted = deletedBefore;
    let lastProgress = performance.now();
    await waitUntil(
      async () => {
        const deleted = await deletes();
        if (deleted !== lastDeleted) {
          lastDeleted = deleted;
          lastProgress = performance.now();
        }
        return deleted - deletedBefore >= jobs;
      },
      {
        intervalMs: POLL_MS,
        timeoutMs: Number.MAX_SAFE_INTEGER,
        what: `${jobs} deletes in ${tube}`,
        abort: () =>
          exitedEarly() ??
          (performance.now() - lastProgress > STALL_MS
            ? `no job deleted for ${STALL_MS} ms (${lastDeleted - deletedBefore} of ${jobs})`
            : undefined),
      },
    );
    const elapsed = performance.now() - start;
    const cpuAfter = cpuTimeMs(running.pid);
    const maxRssMb = rss?.stop();

    const exit = await running.stop();
    if (options.expectCleanExit && exit.code !== 0) {
      throw new Error(`the worker exited with ${JSON.stringify(exit)} after SIGTERM: ${running.stderr().trim() || 'no stderr'}`);
    }
    const log = await readFile(options.logFile, 'utf8');
    const lines = log.split('\n').filter((line) => line !== '');
    const extra: Record<string, number> = {
      logLines: lines.length,
      completedLines: lines.filter((line) => line.includes('job completed')).length,
    };
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
