/**
 * `bsworker --tubes a,b`: load the jobs directory, check it serves the tubes, run a Worker, and turn
 * SIGTERM/SIGINT into a graceful stop (a second signal forces it).
 */
import { resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { formatAddress, URL_ENV } from '../beanstalk/address.js';
import { loadJobs } from '../loader/load-jobs.js';
import { createLogger, LOG_LEVELS, toError } from '../logging/logger.js';
import { listTasks } from '../tasks/registry.js';
import type { StopResult } from '../worker/events.js';
import { Worker } from '../worker/worker.js';
import { EXIT, UsageError } from './errors.js';

/** The options of the worker command, as commander parsed them. */
export interface RunWorkerOptions {
  readonly tubes: string[];
  readonly jobs: string;
  readonly url?: string;
  readonly maxKicks: number;
  readonly graceMs: number;
  readonly logLevel: string;
}

/** Runs a worker until a signal stops it; resolves to the exit code. */
export async function runWorker(options: RunWorkerOptions): Promise<number> {
  // Tasks that put follow-up jobs create their own JobQueue while their module loads: they must reach
  // the server this worker uses.
  if (options.url !== undefined) process.env[URL_ENV] = options.url;
  // commander does not parse a default, so a LOG_LEVEL from the environment is checked here.
  if (!(LOG_LEVELS as readonly string[]).includes(options.logLevel)) {
    throw new UsageError(
      `unknown log level \`${options.logLevel}\` (from --log-level or LOG_LEVEL); expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const logger = createLogger({ level: options.logLevel as LevelWithSilent });

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

  const worker = new Worker({ tubes: options.tubes, url: options.url, logger, maxKicks: options.maxKicks, graceMs: options.graceMs });
  const stopped = new Promise<StopResult>((resolveStop) => worker.once('worker:stopped', resolveStop));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      logger.info({ signal, graceMs: options.graceMs }, `${signal}: stopping after the running job (send it again to stop now)`);
      void worker.stop();
    } else {
      logger.warn({ signal }, `${signal} again: giving the running job back and stopping now`);
      void worker.stop({ force: true });
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A task that leaves a promise rejection unhandled must not take the worker down with it (Node's
  // default); it is logged and the worker goes on.
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: toError(reason) }, 'unhandled promise rejection (a task left a promise unhandled); the worker goes on');
  });
  // An exception thrown from a timer or callback leaves the process in an unknown state: stop now. The
  // running jobs go back to ready with the closed connection.
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception; stopping now, running jobs go back to ready');
    void worker.stop({ force: true }).finally(() => process.exit(EXIT.failure));
  });

  await worker.start();
  logger.debug({ files: files.length, tasks: tasks.length, server: formatAddress(worker.address) }, 'jobs loaded');
  const result = await stopped;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return result.graceful && signals < 2 ? EXIT.ok : EXIT.failure;
}
