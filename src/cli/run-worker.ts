/**
 * `bsworker --tubes a,b`: load the jobs directory, check it serves the tubes, run a Worker, and turn
 * SIGTERM/SIGINT into a graceful stop (a second signal forces it). A worker forked by the
 * `--processes` supervisor also stops gracefully when a recycle limit is reached or the supervisor dies.
 */

import { resolve } from 'node:path';
import { formatAddress, URL_ENV } from '../beanstalk/address.js';
import { ConnectionError } from '../beanstalk/errors.js';
import { loadJobs } from '../loader/load-jobs.js';
import { createLogger, toError } from '../logging/logger.js';
import { exposeProcessMetrics, type ProcessMetrics } from '../metrics/worker-endpoint.js';
import { parseServerList } from '../servers/server-list.js';
import { listTasks } from '../tasks/registry.js';
import type { StopResult } from '../worker/events.js';
import { Worker } from '../worker/worker.js';
import { supervisedChildIndex, watchRecycleLimits } from './child.js';
import { EXIT, UsageError } from './errors.js';
import { type HealthFile, startHealthFile } from './health-file.js';
import { IPC, onSupervisorMessage, sendToSupervisor } from './ipc.js';
import { logLevelOf } from './parse.js';
import { startSchedulerBeside } from './run-scheduler.js';
import { listenForStopSignals } from './signals.js';
import { setStdoutClosedHandler, watchLoggerOutput } from './stdout.js';
import { waitForAnyServer } from './wait-for-server.js';
import { type WorkerFlagValues, workerOptionsFrom } from './worker-flags.js';

/** The options of the worker command, checked: one field per worker flag (see `worker-flags.ts`). */
export type RunWorkerOptions = WorkerFlagValues;

/**
 * Runs a worker until a signal stops it; resolves to the exit code. The server may be down at start:
 * the worker waits for it (see {@link waitForServer}), and a signal or the parent's death during that
 * wait ends it at once with exit 0.
 */
export async function runWorker(options: RunWorkerOptions): Promise<number> {
  // Tasks that put follow-up jobs create their own JobQueue while their module loads: they must reach
  // the server this worker uses.
  if (options.url !== undefined) process.env[URL_ENV] = options.url;
  const childIndex = supervisedChildIndex();
  const rootLogger = createLogger({ level: logLevelOf(options.logLevel) });
  // Lets the supervisor's "child N" lines be matched with this process's own lines.
  const logger = childIndex === undefined ? rootLogger : rootLogger.child({ child: childIndex });

  // Every way to stop is wired before the slow parts (loading the jobs, waiting for the server): a stop
  // asked for before there is a running worker ends those at once.
  let worker: Worker | undefined;
  const beforeStart = new AbortController();
  // Set before any stop, so that the jobs a stop gives back are not counted as finished ones.
  let stopRequested = false;
  let forced = false;
  let signals = 0;
  const stopGracefully = (fields: Record<string, unknown>, message: string): void => {
    if (stopRequested) return;
    stopRequested = true;
    logger.info(fields, message);
    beforeStart.abort();
    void worker?.stop();
  };
  // The IPC channel of a forked worker closes when its parent dies, even by SIGKILL: without this the
  // children of a killed supervisor would go on running unsupervised for ever. The channel may have
  // closed already, before this listener existed, while Node and bsworker were loading.
  if (process.send !== undefined) {
    const onDisconnect = (): void => stopGracefully({}, 'the parent process is gone; stopping after the running jobs');
    process.once('disconnect', onDisconnect);
    if (!process.connected) onDisconnect();
  }
  // Nobody reads the log any more (`bsworker ... | head`, a log shipper gone): stop as on SIGTERM.
  const onStdoutClosed = (): void => stopGracefully({}, 'stdout is closed; stopping after the running jobs');
  setStdoutClosedHandler(onStdoutClosed);
  watchLoggerOutput(rootLogger);
  if (childIndex !== undefined) {
    onSupervisorMessage(
      (message) => {
        if (message.type === IPC.siblingDied) {
          logger.info('a sibling process died; checking the next jobs for earlier crashes before running them');
          worker?.checkNextJobsForCrashes();
          return;
        }
        if (message.type !== IPC.force) return;
        forced = true;
        stopRequested = true;
        logger.warn('the supervisor forces the stop: giving the running jobs back now');
        beforeStart.abort();
        void worker?.stop({ force: true });
      },
      (problem) => logger.debug({ reason: problem.reason }, 'ignored an IPC message that is not from a bsworker supervisor'),
    );
  }
  // A Ctrl-C reaches the whole process group, supervisor included, and the supervisor turns it into a
  // SIGTERM for each child: acting on the SIGINT as well would make that SIGTERM a second, forcing signal.
  const ignore = (signal: NodeJS.Signals): boolean => {
    if (signal !== 'SIGINT' || childIndex === undefined) return false;
    logger.debug({ signal }, 'SIGINT ignored: the supervisor stops its children with SIGTERM');
    return true;
  };
  const stopListening = listenForStopSignals(
    (signal, nth) => {
      signals = nth;
      if (worker === undefined) {
        // Nothing runs yet: the first signal ends the wait (exit 0); a second one, say during a jobs
        // module that hangs on import, leaves at once.
        if (nth > 1 && childIndex === undefined) process.exit(130);
        stopGracefully({ signal }, `${signal}: stopping before the worker started`);
        return;
      }
      stopRequested = true;
      // Under a supervisor every signal means "stop gracefully"; only its IPC message forces the stop.
      if (nth === 1 || childIndex !== undefined) {
        logger.info({ signal, graceMs: options.graceMs }, `${signal}: stopping after the running job (send it again to stop now)`);
        void worker.stop();
      } else {
        logger.warn({ signal }, `${signal} again: giving the running job back and stopping now`);
        void worker.stop({ force: true });
      }
    },
    { ignore },
  );
  // Served from the start, so that a worker still waiting for beanstalkd is scraped as down (worker_up 0).
  let metrics: ProcessMetrics | undefined;
  if (options.metricsIpc && childIndex !== undefined) metrics = await exposeProcessMetrics({ ipc: true }, logger);
  else if (options.metricsPort !== undefined) {
    const http = { host: options.metricsHost, port: options.metricsPort };
    try {
      metrics = await exposeProcessMetrics({ http }, logger);
    } catch (error) {
      stopListening();
      throw new Error(`could not serve the metrics on ${http.host}:${http.port}: ${toError(error).message}`, { cause: error });
    }
  }
  try {
    return await runUntilStopped();
  } finally {
    stopListening();
    await metrics?.close();
  }

  async function runUntilStopped(): Promise<number> {
    const files = await loadJobs(resolve(options.jobs));
    const tasks = listTasks();
    const served = options.tubes.filter((tube) => tasks.some((task) => task.tube === tube));
    if (served.length === 0) {
      const registered = tasks.length === 0 ? 'nothing' : tasks.map((task) => `${task.tube}: ${task.name}`).join(', ');
      throw new UsageError(
        `no task is registered in ${options.tubes.map((tube) => `\`${tube}\``).join(', ')}; ${options.jobs} (${files.length} module(s)) registered ${registered}`,
      );
    }
    for (const tube of options.tubes) {
      if (!served.includes(tube)) logger.warn({ tube }, `no task is registered in tube ${tube}; its jobs will be buried as unregistered`);
    }
    // A task that leaves a promise rejection unhandled must not take the worker down with it (Node's
    // default); it is logged and the worker goes on.
    process.on('unhandledRejection', (reason) => {
      logger.error({ err: toError(reason) }, 'unhandled promise rejection (a task left a promise unhandled); the worker goes on');
    });
    // An exception thrown from a timer or callback leaves the process in an unknown state: stop now. The
    // running jobs go back to ready with the closed connection.
    process.on('uncaughtException', (error) => {
      logger.fatal({ err: error }, 'uncaught exception; stopping now, running jobs go back to ready');
      void (worker?.stop({ force: true }) ?? Promise.resolve()).finally(() => process.exit(EXIT.failure));
    });

    const addresses = parseServerList(options.url).map((server) => server.address);
    let stopped: Promise<StopResult>;
    // A Worker runs once: when the server goes away again between the probe and the start, a new one
    // waits for it.
    for (;;) {
      const up = await waitForAnyServer(addresses, { logger, signal: beforeStart.signal, timeoutSeconds: options.connectTimeout });
      if (!up) return EXIT.ok;
      const candidate = new Worker(workerOptionsFrom(options, logger));
      stopped = new Promise<StopResult>((resolveStop) => candidate.once('worker:stopped', resolveStop));
      watchRecycleLimits(
        candidate,
        options,
        () => stopRequested,
        (reached) => {
          // Tells the supervisor that the exit 0 to come is a planned recycle, not a crash.
          void sendToSupervisor({ type: IPC.recycled });
          stopGracefully(
            { ...reached, maxJobs: options.maxJobs, maxMemoryMb: options.maxMemoryMb },
            `${reached.limit} limit reached; stopping after the running jobs so that a fresh process takes over`,
          );
        },
      );
      worker = candidate;
      const detachMetrics = metrics?.metrics.attach(candidate);
      // Progress is followed only where it is served (--metrics-port, or a child's IPC answers).
      const detachProgress = metrics?.progress.attach(candidate);
      const detach = (): void => {
        detachMetrics?.();
        detachProgress?.();
      };
      if (stopRequested) {
        // Asked to stop before it started (stdout closed, a signal, the parent gone): it never starts,
        // and its stop resolves at once. Starting it now would throw: a Worker runs once.
        void candidate.stop();
        break;
      }
      try {
        await candidate.start();
        break;
      } catch (error) {
        worker = undefined;
        detach();
        if (!(error instanceof ConnectionError)) throw error;
        if (stopRequested) return EXIT.ok;
        logger.warn(
          { server: addresses.map(formatAddress).join(','), error: error.message },
          `lost beanstalkd while starting: ${error.message}`,
        );
      }
    }
    const running = worker;
    let health: HealthFile | undefined;
    if (options.healthFile !== undefined && !stopRequested) {
      health = await startHealthFile(options.healthFile, logger, () => running.state === 'running');
    }
    logger.debug({ files: files.length, tasks: tasks.length, servers: running.servers }, 'jobs loaded');
    // One process of a pool runs it: the others would only add connections waiting for the lease.
    const scheduler =
      options.scheduler === true && (childIndex === undefined || childIndex === 0) && !stopRequested
        ? startSchedulerBeside(options.url, logger)
        : undefined;
    const result = await stopped;
    await scheduler?.stop();
    await health?.stop();
    return result.graceful && !forced && (signals < 2 || childIndex !== undefined) ? EXIT.ok : EXIT.failure;
  }
}
