/**
 * `bsworker serve`: the HTTP API over the configured servers (and, with `--jobs`, the task registry),
 * until SIGTERM or SIGINT. The command parses, picks the token and prints it when it made one; the
 * server is `src/http/`, started by `serve-run.ts`, which is loaded only when `serve` runs.
 */

import { isIP } from 'node:net';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { splitHost, TOKEN_ENV } from '../http/security.js';
import { API_DEFAULTS } from '../http/types.js';
import { checkWorkerMetricsUrl } from '../metrics/scrape.js';
import { urlOf, urlOption } from './ops/common.js';
import { integerIn, parseLogLevel } from './parse.js';

/** The port `bsworker serve` listens on unless told. */
export const SERVE_DEFAULT_PORT = 7420;

/** The `serve` options, as commander parsed them. */
export interface ServeCommandOptions {
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
      const { runServe } = await import('./serve-run.js');
      io.exit(await runServe(options, urlOf(command, options)));
    });
}
