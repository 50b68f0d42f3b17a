/**
 * `bsworker serve`: the HTTP API over the configured servers (and, with `--jobs`, the task registry),
 * until SIGTERM or SIGINT. The command parses, picks the token and prints it when it made one; the
 * server is `src/http/`.
 */

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Admin } from '../admin/index.js';
import { checkToken, readTokenFile, splitHost, TOKEN_ENV } from '../http/security.js';
import { createApiServer, ListenRefusedError } from '../http/server.js';
import { API_DEFAULTS, type TaskRegistry } from '../http/types.js';
import { loadJobs } from '../loader/load-jobs.js';
import { createLogger } from '../logging/logger.js';
import { checkWorkerMetricsUrl } from '../metrics/scrape.js';
import { monitorServer, ServerMetrics } from '../metrics/server-metrics.js';
import { parseServerList } from '../servers/server-list.js';
import { findTask, listTasks } from '../tasks/registry.js';
import { validateKwargs } from '../tasks/schema.js';
import { EXIT, UsageError } from './errors.js';
import { urlOf, urlOption } from './ops/common.js';
import { integerIn, logLevelOf, parseLogLevel } from './parse.js';
import { listenForStopSignals } from './signals.js';

/** The port `bsworker serve` listens on unless told. */
export const SERVE_DEFAULT_PORT = 7420;

/** The `serve` options, as commander parsed them. */
interface ServeCommandOptions {
  host: string;
  port: number;
  tokenFile?: string;
  jobs?: string;
  url?: string;
  allowedHost?: string[];
  bodyLimit: number;
  metricsAuth: boolean;
  logLevel: string;
  workerMetrics?: string[];
  trustProxy?: string[];
}

/** `--trust-proxy a,b` (repeatable): proxies' IP addresses or CIDR ranges. */
function parseTrustProxy(value: string, previous: string[] = []): string[] {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.split('/');
    const family = isIP(address);
    const maxBits = family === 6 ? 128 : 32;
    const bitsOk = bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (family === 0 || !bitsOk || extra !== undefined)
      throw new InvalidArgumentError(`expected an IP address or a CIDR range (e.g. 127.0.0.1 or 10.0.0.0/8), got ${JSON.stringify(entry)}`);
  }
  return [...previous, ...entries];
}

/** `--worker-metrics a,b` (repeatable): workers' /metrics URLs. */
function parseWorkerMetrics(value: string, previous: string[] = []): string[] {
  const urls = value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  try {
    return [...previous, ...urls.map(checkWorkerMetricsUrl)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** `--allowed-host a,b` (repeatable): each NAME or NAME:PORT, or `*`. */
function parseAllowedHosts(value: string, previous: string[] = []): string[] {
  const hosts = value
    .split(',')
    .map((host) => host.trim())
    .filter((host) => host !== '');
  for (const host of hosts) {
    if (host !== '*' && !splitHost(host))
      throw new InvalidArgumentError(`expected NAME or NAME:PORT (e.g. api.example.com), got ${JSON.stringify(host)}`);
  }
  return [...previous, ...hosts];
}

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
async function runServe(options: ServeCommandOptions, url: string | undefined): Promise<number> {
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
      ...(jobs ? { registry: jobs.registry, validate: validateKwargs } : {}),
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

/** Registers `serve`. */
export function registerServeCommand(program: Command, io: { readonly exit: (code: number) => void }): void {
  program
    .command('serve')
    .description('serve the HTTP API (JSON under /api/, /healthz, /readyz, /metrics) over the beanstalkd server(s)')
    .option('--host <host>', 'address to listen on; anything but loopback needs a configured token', API_DEFAULTS.host)
    .option('--port <n>', 'port to listen on (0: any free port, printed at start)', integerIn(0, 65_535), SERVE_DEFAULT_PORT)
    .option('--token-file <path>', `file holding the bearer token (first line), else $${TOKEN_ENV}, else one is generated and printed`)
    .option('-j, --jobs <dir>', 'load this jobs directory: puts of tasks it does not register are refused (400), kwargs checked')
    .addOption(urlOption())
    .option(
      '--allowed-host <names>',
      'more names the Host header may carry, comma-separated: NAME, NAME:PORT, or * for any',
      parseAllowedHosts,
    )
    .option(
      '--body-limit <bytes>',
      'largest request body; a larger one gets 413 before it is read',
      integerIn(1_024, 256 * 1024 * 1024),
      API_DEFAULTS.bodyLimitBytes,
    )
    .option('--no-metrics-auth', 'let /metrics be scraped without the token (every other route still needs it)')
    .option(
      '--worker-metrics <urls>',
      "workers' /metrics URLs (bsworker --metrics-port), comma-separated, read by GET /api/workers",
      parseWorkerMetrics,
    )
    .option(
      '--trust-proxy <addresses>',
      'reverse proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For/-Proto are believed: the login bound per client, Secure cookies behind TLS',
      parseTrustProxy,
    )
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
        .argParser(parseLogLevel)
        .default(process.env.LOG_LEVEL ?? 'info', '$LOG_LEVEL, else info'),
    )
    .addHelpText(
      'after',
      `\nEvery route but /healthz and /readyz needs  Authorization: Bearer <token>.\n\nExamples:\n  bsworker serve\n  bsworker serve --port 8080 --jobs dist/jobs --token-file /run/secrets/bsworker-token\n  BSWORKER_TOKEN=... bsworker serve --host 0.0.0.0 --allowed-host bsworker.internal`,
    )
    .action(async (options: ServeCommandOptions, command: Command) => {
      io.exit(await runServe(options, urlOf(command, options)));
    });
}
