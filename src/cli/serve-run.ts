/**
 * What `bsworker serve` does once its flags are parsed: pick the token, load the jobs, start the HTTP
 * API and run it until a signal. Kept apart from the flags (`serve.ts`) and imported only when `serve`
 * runs, so that the worker and the other commands never load Fastify and its plugins.
 */

import { resolve } from 'node:path';
import { Admin } from '../admin/index.js';
import { checkToken, readTokenFile, TOKEN_ENV } from '../http/security.js';
import { createApiServer, ListenRefusedError } from '../http/server.js';
import type { TaskRegistry } from '../http/types.js';
import { loadJobs } from '../loader/load-jobs.js';
import { createLogger } from '../logging/logger.js';
import { monitorServer, ServerMetrics } from '../metrics/server-metrics.js';
import { listSchedules } from '../scheduler/registry.js';
import { parseServerList } from '../servers/server-list.js';
import { findTask, listTasks } from '../tasks/registry.js';
import { validateKwargs } from '../tasks/schema.js';
import { EXIT, UsageError } from './errors.js';
import { logLevelOf } from './parse.js';
import type { ServeCommandOptions } from './serve.js';
import { listenForStopSignals } from './signals.js';

/** The configured token, from `--token-file` or the environment, or undefined (the server generates one). */
async function configuredToken(options: ServeCommandOptions, warn: (line: string) => void): Promise<string | undefined> {
  if (options.tokenFile !== undefined) {
    let file: Awaited<ReturnType<typeof readTokenFile>>;
    try {
      file = await readTokenFile(options.tokenFile);
    } catch (error) {
      if (error instanceof TypeError) throw new UsageError(error.message);
      throw new UsageError(
        `cannot read --token-file ${JSON.stringify(options.tokenFile)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    if (file.readableByOthers) warn(`--token-file ${JSON.stringify(options.tokenFile)} can be read by other users; chmod 600 it`);
    return file.token;
  }
  const fromEnv = process.env[TOKEN_ENV];
  if (fromEnv === undefined || fromEnv === '') return undefined;
  try {
    return checkToken(fromEnv.trim(), TOKEN_ENV);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Imports the jobs directory and hands the server the process's registry. */
async function loadRegistry(jobs: string): Promise<{ registry: TaskRegistry; files: number; tasks: number }> {
  const files = await loadJobs(resolve(jobs));
  return { registry: { findTask, listTasks }, files: files.length, tasks: listTasks().length };
}

/** Runs the API until a signal; resolves to the exit code. */
export async function runServe(options: ServeCommandOptions, url: string | undefined): Promise<number> {
  const logger = createLogger({ level: logLevelOf(options.logLevel) });
  const warn = (line: string): void => {
    process.stderr.write(`bsworker: warning: ${line}\n`);
  };
  const token = await configuredToken(options, warn);
  const jobs = options.jobs === undefined ? undefined : await loadRegistry(options.jobs);
  if (jobs)
    logger.info({ jobs: options.jobs, modules: jobs.files, tasks: jobs.tasks }, 'http: jobs directory loaded; puts are checked against it');
  const admin = new Admin(url === undefined ? {} : { urls: url });
  // /metrics reads every server on each scrape on connections of its own, so a slow scrape never
  // queues behind (or in front of) the API's commands. One monitor per server: its `server` label.
  const monitors = parseServerList(url).map((server) => monitorServer(server.address, server.name));
  const metrics = new ServerMetrics({ servers: monitors });
  const closeAll = async (): Promise<void> => {
    await admin.close();
    await Promise.all(monitors.map((monitor) => monitor.close()));
  };
  let server: Awaited<ReturnType<typeof createApiServer>> | undefined;
  try {
    server = await createApiServer({
      admin,
      logger,
      ...(token === undefined ? {} : { token }),
      ...(jobs ? { registry: jobs.registry, validate: validateKwargs, schedules: listSchedules } : {}),
      allowedHosts: options.allowedHost ?? [],
      bodyLimitBytes: options.bodyLimit,
      metricsAuth: options.metricsAuth,
      metricsRegistry: metrics.registry,
      workerMetrics: options.workerMetrics ?? [],
      trustProxy: options.trustProxy ?? [],
    });
    const address = await server.listen({ host: options.host, port: options.port });
    if (server.tokenGenerated) {
      // stderr, not the log: a log shipper must not collect it. Never in a URL.
      process.stderr.write(
        `bsworker serve: no token configured (--token-file or ${TOKEN_ENV}); generated one for this run:\n  ${server.token}\nsend it as the header  Authorization: Bearer <token>\n`,
      );
    }
    logger.info({ url: address.url, servers: admin.serverNames, jobs: options.jobs ?? null }, 'http: listening');
  } catch (error) {
    await server?.close();
    await closeAll();
    if (error instanceof ListenRefusedError) throw new UsageError(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new Error(`cannot listen on ${options.host}:${options.port}: ${code}`);
    }
    throw error;
  }
  const running = server;
  let stopListening = (): void => undefined;
  const code = await new Promise<number>((resolveStop) => {
    stopListening = listenForStopSignals((signal, nth) => {
      if (nth > 1) {
        logger.warn({ signal }, `${signal} again: stopping now`);
        resolveStop(EXIT.ok);
        return;
      }
      logger.info({ signal }, `${signal}: closing the HTTP API after the requests in progress (send it again to stop now)`);
      running
        .close()
        .then(closeAll)
        .then(
          () => resolveStop(EXIT.ok),
          (error: unknown) => {
            logger.error({ err: error }, 'http: could not close cleanly');
            resolveStop(EXIT.failure);
          },
        );
    });
  });
  stopListening();
  logger.info('http: stopped');
  return code;
}
