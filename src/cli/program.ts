/**
 * The `bsworker` command line. {@link buildProgram} returns the commander program without running it,
 * so tests can drive it; `main.ts` runs it and maps errors to exit codes.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { WORKER_DEFAULTS } from '../worker/options.js';
import { registerCheckCommand } from './check.js';
import { formatError } from './errors.js';
import { urlOption } from './ops/common.js';
import { registerOperatingCommands } from './ops/index.js';
import { integerIn, parseKeys, parseListenHost, parseLogLevel, parseRedactEnv, parseTube, parseTubes } from './parse.js';
import { runWorker } from './run-worker.js';
import { registerServeCommand } from './serve.js';
import { runSupervisor } from './supervisor.js';

/** Where the program writes, and what it does with an exit code. */
export interface ProgramIo {
  readonly print: (line: string) => void;
  /** True when stdout is a terminal (colours, prompts, live views). @defaultValue false */
  readonly isTTY?: boolean;
  /** Receives the exit code of a finished command. */
  readonly exit: (code: number) => void;
  /** Writes commander's own messages (usage errors, help on stderr). @defaultValue process.stderr */
  readonly printError?: (text: string) => void;
}

/**
 * Commander's error text (`error: unknown option 'x'`) as one line in bsworker's form: the README's
 * `bsworker: error: ` prefix, and every control character (a CR, an ESC from a pasted value, a bidi
 * override) escaped, because commander quotes the user's values as they came.
 */
export function usageErrorLine(text: string): string {
  const message = text.replace(/\n+$/, '').replace(/^error: /, '');
  return `${formatError(new Error(message))}\n`;
}

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The root (worker) command's options, as commander parsed them. */
interface WorkerCommandOptions {
  tubes?: string[];
  jobs: string;
  url?: string;
  maxKicks: number;
  graceMs: number;
  logLevel: string;
  processes?: number;
  maxJobsPerChild?: number;
  maxMemoryPerChild?: number;
  maxJobs?: number;
  maxMemoryMb?: number;
  concurrency?: number;
  kickPeriod?: number;
  deadLetter?: string;
  connectTimeout?: number;
  redact?: string[];
  healthFile?: string;
  threads?: number;
  failureRecords?: boolean;
  metricsPort?: number;
  metricsHost?: string;
  metricsIpc?: boolean;
}

/** Worker flags the supervisor does not interpret, keyed by commander's name for them. */
const PASS_THROUGH_FLAGS: Readonly<Record<string, string>> = {
  concurrency: '--concurrency',
  kickPeriod: '--kick-period',
  deadLetter: '--dead-letter',
  connectTimeout: '--connect-timeout',
  redact: '--redact',
  threads: '--threads',
};

/** The pass-through worker flags that were given (or have a default), as arguments for each child. */
function passThroughArgs(options: object): string[] {
  const values = options as Record<string, unknown>;
  const args = Object.entries(PASS_THROUGH_FLAGS).flatMap(([key, flag]) => {
    const value = values[key];
    // Arrays (--redact) go back to their comma-separated form.
    return value === undefined ? [] : [flag, Array.isArray(value) ? value.join(',') : String(value)];
  });
  // Negated booleans take no value.
  if (values.failureRecords === false) args.push('--no-failure-records');
  return args;
}

/** Builds the `bsworker` program. Usage errors throw commander's CommanderError (exit code 2). */
export function buildProgram(io: ProgramIo): Command {
  const program: Command = new Command('bsworker');
  program
    .description('Run bsworker tasks from beanstalkd tubes, and handle buried jobs.')
    .version(packageVersion(), '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    // Set before the subcommands are added: they copy it.
    .configureOutput({
      writeErr: io.printError ?? ((text) => process.stderr.write(text)),
      outputError: (text, write) => write(usageErrorLine(text)),
    })
    // Not requiredOption: commander checks a parent's required options for its subcommands too.
    .option('-t, --tubes <tubes>', 'comma-separated tubes to watch, e.g. emails,reports (required)', parseTubes)
    .option('-j, --jobs <dir>', 'directory whose modules register the tasks (.js, .mjs, .cjs, and .ts, .mts, .cts through tsx)', './jobs')
    .addOption(urlOption())
    .option('-c, --concurrency <n>', 'jobs run at once in one process, each on its own connection (default: 1)', integerIn(1, 1_000))
    .option(
      '--threads <n>',
      'run task code in n worker threads, for CPU-bound tasks: the keep-alive cannot be blocked (default: off)',
      integerIn(1, 256),
    )
    .option(
      '--max-kicks <n>',
      'kicks a failing job gets before a failure deletes (or dead-letters) it',
      integerIn(0),
      WORKER_DEFAULTS.maxKicks,
    )
    .option('--kick-period <seconds>', "kick the watched tubes' buried jobs this often (default: off)", integerIn(1, 86_400))
    .option('--dead-letter <tube>', 'at the kick bound, move failed jobs to this tube instead of deleting them', parseTube)
    .option('--no-failure-records', 'bury failed jobs without their failure record (kept by default on beanstalkd 1.12+)')
    .option('--grace-ms <ms>', 'on SIGTERM, how long running jobs may take to finish', integerIn(0, 2_147_483_647), WORKER_DEFAULTS.graceMs)
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
        .argParser(parseLogLevel)
        .default(process.env.LOG_LEVEL ?? 'info', '$LOG_LEVEL, else info'),
    )
    .option(
      '--connect-timeout <seconds>',
      'give up (exit 1) when beanstalkd is still unreachable at start after this long (default: wait for ever)',
      integerIn(1, 86_400 * 365),
    )
    .addOption(
      new Option('--redact <keys>', 'comma-separated kwargs keys whose values are never logged, e.g. password,token')
        .argParser(parseKeys)
        .default(
          process.env.BSWORKER_REDACT === undefined ? undefined : parseRedactEnv(process.env.BSWORKER_REDACT),
          '$BSWORKER_REDACT, else none',
        ),
    )
    .option('--health-file <path>', 'while running, write the time into this file every 5s (for a container healthcheck); removed on stop')
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port, logged)', integerIn(0, 65_535))
    .option('--metrics-host <host>', 'the address --metrics-port listens on (an IP address or localhost)', parseListenHost, '127.0.0.1')
    // Set by the supervisor on each child: answer its metrics requests over IPC.
    .addOption(new Option('--metrics-ipc', "answer the supervisor's metrics requests").hideHelp())
    .option('--processes <n>', 'run n worker processes under a supervisor that restarts any that dies (1 to 64)', integerIn(1, 64))
    .option('--max-jobs-per-child <n>', 'replace a worker process after n finished jobs (implies --processes 1)', integerIn(1))
    .option('--max-memory-per-child <mb>', 'replace a worker process once its RSS exceeds mb MiB (implies --processes 1)', integerIn(16))
    // Set by the supervisor on each child; users give the -per-child forms.
    .addOption(new Option('--max-jobs <n>', 'stop gracefully after n finished jobs').argParser(integerIn(1)).hideHelp())
    .addOption(new Option('--max-memory-mb <mb>', 'stop gracefully once RSS exceeds mb MiB').argParser(integerIn(16)).hideHelp())
    .addHelpText(
      'after',
      '\nThe server may be down at start: the worker waits for it, retrying with backoff (see --connect-timeout).\n\nExamples:\n  bsworker --tubes emails,reports --concurrency 8\n  bsworker --tubes emails --kick-period 60 --dead-letter failed_jobs\n  bsworker --tubes reports --processes 4 --max-jobs-per-child 1000\n  bsworker --tubes emails --jobs dist/jobs --url beanstalk://127.0.0.1:11300\n  bsworker --tubes emails --metrics-port 9464\n  bsworker kick --tube emails\n\nExit codes: 0 ok, 1 runtime failure, 2 usage error.',
    )
    .action(async (options: WorkerCommandOptions) => {
      const { tubes } = options;
      if (tubes === undefined) program.error("error: required option '-t, --tubes <tubes>' not specified", { exitCode: 2 });
      const { processes, maxJobsPerChild, maxMemoryPerChild } = options;
      if (processes === undefined && maxJobsPerChild === undefined && maxMemoryPerChild === undefined) {
        io.exit(await runWorker({ ...options, tubes }));
        return;
      }
      if (options.metricsIpc) program.error('error: --metrics-ipc is set by the supervisor on its children', { exitCode: 2 });
      if (options.maxJobs !== undefined || options.maxMemoryMb !== undefined) {
        program.error('error: with --processes, give the limits as --max-jobs-per-child and --max-memory-per-child', { exitCode: 2 });
      }
      io.exit(
        await runSupervisor({
          ...options,
          tubes,
          processes: processes ?? 1,
          maxMemoryPerChildMb: maxMemoryPerChild,
          extraArgs: passThroughArgs(options),
        }),
      );
    });

  registerOperatingCommands(program, { print: io.print, isTTY: io.isTTY ?? false });
  registerCheckCommand(program, { ...io, isTTY: io.isTTY ?? false });
  registerServeCommand(program, io);
  // `bsworker help [command]`, as `--help` does. Added last: subcommands copy the help command
  // setting, and `put help f` must still put into a tube called help.
  program.helpCommand(true);

  return program;
}
