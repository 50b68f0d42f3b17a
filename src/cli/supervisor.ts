/**
 * `bsworker --processes P`: a supervisor that forks P ordinary `bsworker` workers, restarts a child that
 * dies (with backoff), replaces at once a child that exits 0 after reaching a recycle limit, and on
 * SIGTERM/SIGINT stops them all gracefully (a second signal forces it).
 *
 * The supervisor never talks to beanstalkd: a job belongs to the child's connection, so a child that
 * dies, even by SIGKILL, hands its running job straight back to beanstalkd (ready again, no TTR wait).
 */

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger } from '../logging/logger.js';
import { ClusterMetrics } from '../metrics/cluster.js';
import { jsonRenderer, type MetricsEndpoint, startMetricsServer } from '../metrics/http.js';
import { warnIfExposed } from '../metrics/worker-endpoint.js';
import { parseServerList } from '../servers/server-list.js';
import { backoffDelay } from '../util/backoff.js';
import { CHILD_INDEX_ENV } from './child.js';
import { EXIT } from './errors.js';
import { type HealthFile, startHealthFile } from './health-file.js';
import { IPC, type Malformed, onChildMessage, sendToChild } from './ipc.js';
import { logLevelOf } from './parse.js';
import { listenForStopSignals } from './signals.js';
import { setStdoutClosedHandler, watchLoggerOutput } from './stdout.js';
import { waitForAnyServer } from './wait-for-server.js';
import { childArgs, type WorkerFlagValues } from './worker-flags.js';

/**
 * The options of the supervisor: the worker command's (each child gets its share of them through
 * {@link childArgs}), with the pool's size settled.
 */
export type SupervisorOptions = WorkerFlagValues & {
  /** How many worker processes to keep running (1..64). */
  readonly processes: number;
};

/** Every timing of the supervisor, in one place. */
export const SUPERVISOR_DEFAULTS = Object.freeze({
  /** The delay before restarting a child that died for the first time. */
  restartInitialMs: 1_000,
  /** The delay doubles with each death in a row, up to this. */
  restartMaxMs: 30_000,
  /** Each delay is shortened by up to this fraction, so that children do not restart in step. */
  restartJitter: 0.2,
  /** A child that stayed up this long starts its slot's backoff again from the beginning. */
  stableAfterMs: 60_000,
  /**
   * After the first signal, children still running after `graceMs` plus this are killed. A child gives
   * its jobs back by itself when its grace period ends, so one still there is stuck, typically in a
   * synchronous CPU-bound task that keeps its signal handler from running.
   */
  killMarginMs: 10_000,
});

/** The `bsworker` executable that every child runs (dist/cli/supervisor.js -> bin/bsworker). */
const BIN = fileURLToPath(new URL('../../bin/bsworker', import.meta.url));

/**
 * The delay before restarting a child after `deaths` earlier deaths in a row in its slot: 1 s, 2 s, 4 s,
 * ... capped at 30 s, each spread over 80-100% of that.
 *
 * @param random a number in [0, 1); replaceable for tests
 */
export function restartDelayMs(deaths: number, random: () => number = Math.random): number {
  const { restartInitialMs, restartMaxMs, restartJitter } = SUPERVISOR_DEFAULTS;
  return Math.round(backoffDelay(deaths + 1, { initial: restartInitialMs, max: restartMaxMs, jitter: restartJitter }, random));
}

/** One place in the pool: the child running there now, if any, and its backoff. */
interface Slot {
  readonly index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  /** Deaths in a row; what the next restart delay is computed from. */
  deaths: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** The child announced a planned recycle: its exit 0 is replaced at once. */
  recycling: boolean;
}

/**
 * Runs the pool until a signal stops it, or a child fails in a way restarting cannot fix. Resolves to
 * the exit code: 0 when every child stopped gracefully, 2 when a child exited with a usage error, else 1.
 */
export async function runSupervisor(options: SupervisorOptions): Promise<number> {
  const logger = createLogger({ level: logLevelOf(options.logLevel) });
  const metrics = options.metricsPort === undefined ? undefined : new ClusterMetrics();
  const supervisor = new Supervisor(options, logger, metrics);
  // Until the server answers there are no children: a signal (or a closed stdout) ends the wait.
  const waiting = new AbortController();
  let started = false;
  const stopListening = listenForStopSignals((signal, nth) => {
    if (started) supervisor.signal(signal, nth);
    else {
      logger.info({ signal }, `${signal}: stopping before any child started`);
      waiting.abort();
    }
  });
  setStdoutClosedHandler(() => (started ? supervisor.signal('SIGTERM', 1) : waiting.abort()));
  watchLoggerOutput(logger);
  let health: HealthFile | undefined;
  let endpoint: MetricsEndpoint | undefined;
  try {
    if (metrics) endpoint = await serveClusterMetrics(metrics, options, logger);
    // The same wait as a single worker's, once for the pool: P children each failing at start would be
    // restarted with backoff, logging P errors a round.
    const up = await waitForAnyServer(
      parseServerList(options.url).map((server) => server.address),
      {
        logger,
        signal: waiting.signal,
        timeoutSeconds: options.connectTimeout,
      },
    );
    if (!up) return EXIT.ok;
    started = true;
    if (options.healthFile !== undefined) health = await startHealthFile(options.healthFile, logger, () => supervisor.liveChildren > 0);
    return await supervisor.run();
  } finally {
    await health?.stop();
    await endpoint?.close();
    stopListening();
  }
}

/** Serves the summed metrics of the children; rejects when the port cannot be bound. */
async function serveClusterMetrics(metrics: ClusterMetrics, options: SupervisorOptions, logger: Logger): Promise<MetricsEndpoint> {
  const host = options.metricsHost;
  const port = options.metricsPort ?? 0;
  warnIfExposed(host, logger);
  let endpoint: MetricsEndpoint;
  try {
    endpoint = await startMetricsServer({
      host,
      port,
      render: () => metrics.render(),
      // The children's running jobs with progress, merged over the same IPC channel as the metrics.
      documents: { '/progress': jsonRenderer(() => metrics.progress()) },
      onError: (error) => logger.error({ err: error }, 'rendering the metrics failed'),
    });
  } catch (error) {
    throw new Error(`could not serve the metrics on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  logger.info({ url: endpoint.url, host: endpoint.host, port: endpoint.port }, `metrics of every child, summed, at ${endpoint.url}`);
  return endpoint;
}

/** The pool of one {@link runSupervisor} call: its slots, and whether it is stopping. */
class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #logger: Logger;
  readonly #args: string[];
  readonly #slots: Slot[];
  #stopping = false;
  /** Set once a second signal forced the stop. */
  #forced = false;
  /** Set when the pool ends for a reason other than a signal. */
  #fatalCode: number | undefined;
  /** Children that did not stop cleanly once the pool was stopping. */
  #unclean = 0;
  #killTimer: NodeJS.Timeout | undefined;
  #resolveDone: (() => void) | undefined;

  readonly #metrics: ClusterMetrics | undefined;

  constructor(options: SupervisorOptions, logger: Logger, metrics: ClusterMetrics | undefined) {
    this.#options = options;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#args = childArgs(options);
    this.#slots = Array.from({ length: options.processes }, (_, index) => ({
      index,
      child: undefined,
      startedAt: 0,
      deaths: 0,
      restartTimer: undefined,
      recycling: false,
    }));
  }

  async run(): Promise<number> {
    const done = new Promise<void>((resolve) => {
      this.#resolveDone = resolve;
    });
    const { processes, maxJobsPerChild, maxMemoryPerChild } = this.#options;
    this.#logger.info(
      { processes, maxJobsPerChild, maxMemoryPerChildMb: maxMemoryPerChild, tubes: this.#options.tubes },
      'supervisor started',
    );
    for (const slot of this.#slots) this.#start(slot);
    await done;
    clearTimeout(this.#killTimer);
    const code = this.#fatalCode ?? (!this.#forced && this.#unclean === 0 ? EXIT.ok : EXIT.failure);
    this.#logger.info({ code }, 'supervisor stopped');
    return code;
  }

  /** The first signal stops the children gracefully, any later one tells them to stop now. */
  signal(signal: NodeJS.Signals, nth: number): void {
    if (nth === 1) {
      // A closed stdout asks for a graceful stop too: only the first request starts one.
      if (this.#stopping) return;
      this.#logger.info(
        { signal, children: this.#live().length, graceMs: this.#options.graceMs },
        `${signal}: stopping the children after their running jobs (send it again to stop them now)`,
      );
      this.#stop();
    } else {
      this.#forced = true;
      this.#logger.warn(
        { signal, children: this.#live().length },
        `${signal} again: the children give their running jobs back and stop now`,
      );
      // A supervised child takes every signal as "stop gracefully" (a group SIGTERM reaches it twice);
      // forcing goes over IPC.
      for (const child of this.#live()) {
        try {
          sendToChild(child, { type: IPC.force });
        } catch (error) {
          this.#logger.warn({ err: error, childPid: child.pid }, 'could not tell a child to force its stop');
        }
      }
    }
  }

  /** How many children are running now. */
  get liveChildren(): number {
    return this.#live().length;
  }

  #live(): ChildProcess[] {
    return this.#slots.flatMap((slot) => (slot.child ? [slot.child] : []));
  }

  #start(slot: Slot): void {
    slot.restartTimer = undefined;
    if (this.#stopping) return;
    let child: ChildProcess;
    try {
      child = fork(BIN, this.#args, {
        env: { ...process.env, [CHILD_INDEX_ENV]: String(slot.index) },
        // The children inherit Node's flags, but not --inspect: they would all fight for its port.
        execArgv: process.execArgv.filter((arg) => !/^--inspect/.test(arg)),
        stdio: 'inherit',
      });
    } catch (error) {
      this.#logger.error({ err: error, child: slot.index }, 'could not fork a child');
      this.#restartLater(slot, {});
      return;
    }
    slot.child = child;
    this.#metrics?.watch(child);
    slot.startedAt = Date.now();
    slot.recycling = false;
    let malformed = 0;
    onChildMessage(
      child,
      (message) => {
        if (message.type === IPC.recycled) slot.recycling = true;
      },
      (problem) => {
        malformed += 1;
        this.#malformed(slot, child, problem, malformed);
      },
    );
    child.once('spawn', () => this.#logger.info({ child: slot.index, childPid: child.pid }, 'child started'));
    child.once('exit', (code, signal) => this.#exited(slot, child, code, signal));
    child.on('error', (error) => {
      this.#logger.error({ err: error, child: slot.index, childPid: child.pid }, 'child process error');
      // Without a pid the fork itself failed, and no 'exit' may follow.
      if (child.pid === undefined) this.#exited(slot, child, null, null);
    });
  }

  /**
   * A child sent something that is not a bsworker message (task code can write to the channel too): it
   * is ignored. The first from each child is a warning, the rest are debug lines, so that a task that
   * sends on every job cannot flood the log.
   */
  #malformed(slot: Slot, child: ChildProcess, problem: Malformed, nth: number): void {
    const fields = { child: slot.index, childPid: child.pid, reason: problem.reason, malformed: nth };
    if (nth === 1) this.#logger.warn(fields, `ignored a malformed IPC message from child ${slot.index}: ${problem.reason}`);
    else this.#logger.debug(fields, 'ignored a malformed IPC message');
  }

  #exited(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    // 'error' and 'exit' can both report the end of one child.
    if (slot.child !== child) return;
    slot.child = undefined;
    const uptimeMs = Date.now() - slot.startedAt;
    const fields = { child: slot.index, childPid: child.pid, code, signal, uptimeMs };
    if (this.#stopping) {
      // Killed by the SIGTERM itself means the child had not yet set up its signal handling, which it
      // does before it reserves anything: no job was lost, so that is a clean stop too.
      const clean = code === EXIT.ok || (code === null && signal === 'SIGTERM');
      if (!clean) this.#unclean += 1;
      this.#logger[clean ? 'info' : 'warn'](fields, 'child stopped');
      this.#checkDone();
      return;
    }
    if (code === EXIT.ok && slot.recycling) {
      // A planned recycle: the child said so before exiting. Any other exit, even 0 (a jobs module
      // calling process.exit(0), someone else's SIGTERM), is restarted with backoff, never in a loop.
      slot.deaths = 0;
      this.#logger.info(fields, 'child recycled; starting its replacement');
      this.#start(slot);
      return;
    }
    if (code === EXIT.usage) {
      // Bad options or a jobs directory that cannot serve the tubes: every restart would fail the same way.
      this.#logger.fatal(fields, 'a child exited with a usage error (see its error line above); stopping the pool');
      this.#fatalCode = EXIT.usage;
      this.#stop();
      return;
    }
    this.#restartLater(slot, fields);
  }

  #restartLater(slot: Slot, fields: Record<string, unknown>): void {
    // A job that kills its process may be taken next by a live sibling: those check their next jobs.
    for (const child of this.#live()) {
      try {
        sendToChild(child, { type: IPC.siblingDied });
      } catch (error) {
        this.#logger.warn({ err: error, childPid: child.pid }, 'could not tell a child that a sibling died');
      }
    }
    this.#metrics?.restarted();
    if (Date.now() - slot.startedAt >= SUPERVISOR_DEFAULTS.stableAfterMs) slot.deaths = 0;
    const delayMs = restartDelayMs(slot.deaths);
    slot.deaths += 1;
    this.#logger.error({ ...fields, child: slot.index, delayMs }, `child died; restarting it in ${delayMs} ms`);
    slot.restartTimer = setTimeout(() => this.#start(slot), delayMs);
  }

  #stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const slot of this.#slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
    }
    this.#kill('SIGTERM');
    const killAfterMs = this.#options.graceMs + SUPERVISOR_DEFAULTS.killMarginMs;
    this.#killTimer = setTimeout(() => {
      const stuck = this.#live();
      if (stuck.length === 0) return;
      this.#logger.error(
        { children: stuck.map((child) => child.pid), killAfterMs },
        'children still running long after their grace period; killing them (their jobs go back to ready)',
      );
      this.#kill('SIGKILL');
    }, killAfterMs);
    this.#checkDone();
  }

  #kill(signal: NodeJS.Signals): void {
    for (const child of this.#live()) {
      try {
        child.kill(signal);
      } catch (error) {
        this.#logger.warn({ err: error, childPid: child.pid, signal }, 'could not signal a child');
      }
    }
  }

  #checkDone(): void {
    if (this.#stopping && this.#live().length === 0) this.#resolveDone?.();
  }
}
