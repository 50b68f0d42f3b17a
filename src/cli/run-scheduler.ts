/**
 * `bsworker scheduler`: load the jobs directory, which declares the schedules, and run a Scheduler
 * until SIGINT/SIGTERM. Any number may run (on as many hosts as wanted): one is active, the others wait
 * for its lease. Also the scheduler a worker runs beside itself with `--scheduler`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { URL_ENV } from '../beanstalk/address.js';
import { loadJobs } from '../loader/load-jobs.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { listSchedules } from '../scheduler/registry.js';
import { SCHEDULER_DEFAULTS, Scheduler } from '../scheduler/scheduler.js';
import { EXIT, UsageError } from './errors.js';
import { urlOf, urlOption } from './ops/common.js';
import { integerIn, logLevelOf, parseLogLevel } from './parse.js';
import { listenForStopSignals } from './signals.js';

/** The options of `bsworker scheduler`. */
export interface RunSchedulerOptions {
  readonly jobs: string;
  readonly url?: string;
  readonly logLevel: string;
  /** The lease's TTR in seconds (see `SchedulerOptions.leaseTtrSeconds`). */
  readonly leaseTtr: number;
}

/** Runs a scheduler until a signal stops it; resolves to the exit code. A second signal exits at once. */
export async function runScheduler(options: RunSchedulerOptions): Promise<number> {
  // The jobs modules create their JobQueues at import, with no url: they must reach these servers.
  if (options.url !== undefined) process.env[URL_ENV] = options.url;
  const logger = createLogger({ level: logLevelOf(options.logLevel) });
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolveStop) => {
    stopRequested = resolveStop;
  });
  const stopListening = listenForStopSignals((signal, nth) => {
    if (nth > 1) process.exit(130);
    logger.info({ signal }, `${signal}: stopping the scheduler`);
    stopRequested();
  });
  try {
    const files = await loadJobs(resolve(options.jobs));
    const schedules = listSchedules();
    if (schedules.length === 0)
      throw new UsageError(
        `no schedule is declared by ${options.jobs} (${files.length} module(s)): declare one with queue.schedule(name, cron, task, kwargs)`,
      );
    const scheduler = new Scheduler({ url: options.url, logger, leaseTtrSeconds: options.leaseTtr });
    scheduler.start();
    logger.info(
      { server: scheduler.server, schedules: schedules.map((schedule) => schedule.name) },
      'scheduler started; waiting for the lease',
    );
    await stopped;
    await stopSchedulerAndQueues(scheduler);
    logger.info('scheduler stopped');
    return EXIT.ok;
  } finally {
    stopListening();
  }
}

/**
 * Starts a scheduler beside a worker (`--scheduler`), for the schedules its jobs directory declared;
 * undefined (with a warning) when there are none. The caller stops it after the worker.
 */
export function startSchedulerBeside(url: string | undefined, logger: Logger): Scheduler | undefined {
  const schedules = listSchedules();
  if (schedules.length === 0) {
    logger.warn('--scheduler: the jobs directory declares no schedule; no scheduler runs');
    return undefined;
  }
  const scheduler = new Scheduler({ url, logger });
  scheduler.start();
  logger.info({ server: scheduler.server, schedules: schedules.map((schedule) => schedule.name) }, 'scheduler started beside the worker');
  return scheduler;
}

/** Stops the scheduler, then closes the queues its schedules put through (their puts are done by then). */
export async function stopSchedulerAndQueues(scheduler: Scheduler): Promise<void> {
  await scheduler.stop();
  await Promise.all([...new Set(listSchedules().map((schedule) => schedule.queue))].map((queue) => queue.close()));
}

/** Registers `bsworker scheduler`. */
export function registerSchedulerCommand(program: Command, exit: (code: number) => void): void {
  program
    .command('scheduler')
    .description('run the schedules declared by the jobs directory (any number may run; one is active)')
    .option('-j, --jobs <dir>', 'directory whose modules declare the schedules and register their tasks', './jobs')
    .addOption(urlOption())
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', parseLogLevel, process.env.LOG_LEVEL ?? 'info')
    .option(
      '--lease-ttr <seconds>',
      'how long a stopped (not killed) active scheduler keeps the others waiting; touched every third of it',
      integerIn(3, 86_400),
      SCHEDULER_DEFAULTS.leaseTtrSeconds,
    )
    .action(async (options: { jobs: string; url?: string; logLevel: string; leaseTtr: number }, command: Command) => {
      const url = urlOf(command, options);
      exit(await runScheduler({ ...options, ...(url === undefined ? {} : { url }) }));
    });
}
