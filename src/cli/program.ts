/**
 * The `bsworker` command line. {@link buildProgram} returns the commander program without running it,
 * so tests can drive it; `main.ts` runs it and maps errors to exit codes.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { WORKER_DEFAULTS } from '../worker/options.js';
import { kickJob, kickTube, type Print, showBuried } from './kick.js';
import { integerIn, parseJobId, parseLogLevel, parseTube, parseTubes, parseUrl } from './parse.js';
import { runWorker } from './run-worker.js';

/** Where the program writes, and what it does with an exit code. */
export interface ProgramIo {
  readonly print: Print;
  /** Receives the exit code of a finished command. */
  readonly exit: (code: number) => void;
}

const urlOption = (): Option =>
  new Option(
    '--url <url>',
    'beanstalkd server: beanstalk://host:port, host:port or host (default: $BEANSTALKD_URL, else 127.0.0.1:11300)',
  ).argParser(parseUrl);

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Builds the `bsworker` program. Usage errors throw commander's CommanderError (exit code 2). */
export function buildProgram(io: ProgramIo): Command {
  const program: Command = new Command('bsworker');
  program
    .description('Run bsworker tasks from beanstalkd tubes, and handle buried jobs.')
    .version(packageVersion(), '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    // Not requiredOption: commander checks a parent's required options for its subcommands too.
    .option('-t, --tubes <tubes>', 'comma-separated tubes to watch, e.g. emails,reports (required)', parseTubes)
    .option('-j, --jobs <dir>', 'directory whose modules register the tasks (.js, .mjs, .cjs, .ts)', './jobs')
    .addOption(urlOption())
    .option('--max-kicks <n>', 'kicks a failing job gets before a failure deletes it', integerIn(0), WORKER_DEFAULTS.maxKicks)
    .option(
      '--grace-ms <ms>',
      'on SIGTERM, how long the running job may take to finish',
      integerIn(0, 2_147_483_647),
      WORKER_DEFAULTS.graceMs,
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', parseLogLevel, process.env.LOG_LEVEL ?? 'info')
    .addHelpText(
      'after',
      '\nExamples:\n  bsworker --tubes emails,reports\n  bsworker --tubes emails --jobs dist/jobs --url beanstalk://127.0.0.1:11300\n  bsworker kick --tube emails\n\nExit codes: 0 ok, 1 runtime failure, 2 usage error.',
    )
    .action(async (options: { tubes?: string[]; jobs: string; url?: string; maxKicks: number; graceMs: number; logLevel: string }) => {
      const { tubes } = options;
      if (tubes === undefined) program.error("error: required option '-t, --tubes <tubes>' not specified", { exitCode: 2 });
      io.exit(await runWorker({ ...options, tubes }));
    });

  program
    .command('kick')
    .description('kick buried jobs of a tube back to ready')
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .option('--bound <n>', 'kick at most this many (default: all buried jobs)', integerIn(1))
    .addOption(urlOption())
    .action(async (options: { tube: string; bound?: number; url?: string }) => {
      await kickTube(io.print, { ...options, url: urlOf(options) });
      io.exit(0);
    });

  program
    .command('kick-job')
    .description('kick one buried or delayed job back to ready')
    .argument('<id>', 'the job id', parseJobId)
    .addOption(urlOption())
    .action(async (id: string, options: { url?: string }) => {
      await kickJob(io.print, { id, url: urlOf(options) });
      io.exit(0);
    });

  program
    .command('buried')
    .description("show a tube's buried count and its first buried job")
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .addOption(urlOption())
    .action(async (options: { tube: string; url?: string }) => {
      await showBuried(io.print, { ...options, url: urlOf(options) });
      io.exit(0);
    });

  // `bsworker --url X kick ...` puts --url before the subcommand, where the root parses it: honour it.
  function urlOf(options: { url?: string }): string | undefined {
    return options.url ?? program.opts<{ url?: string }>().url;
  }

  return program;
}
