/**
 * The `bsworker` command line. {@link buildProgram} returns the commander program without running it,
 * so tests can drive it; `main.ts` runs it and maps errors to exit codes.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerCheckCommand } from './check.js';
import { formatError } from './errors.js';
import { registerOperatingCommands } from './ops/index.js';
import { registerSchedulesCommand } from './ops/schedules.js';
import { registerSchedulerCommand } from './run-scheduler.js';
import { runWorker } from './run-worker.js';
import { registerServeCommand } from './serve.js';
import { runSupervisor } from './supervisor.js';
import { addWorkerFlags, checkRequiredFlags, type ParsedWorkerFlags } from './worker-flags.js';

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
    });
  addWorkerFlags(program)
    .addHelpText(
      'after',
      '\nThe server may be down at start: the worker waits for it, retrying with backoff (see --connect-timeout).\n\nExamples:\n  bsworker --tubes emails,reports --concurrency 8\n  bsworker --tubes emails --kick-period 60 --dead-letter failed_jobs\n  bsworker --tubes reports --processes 4 --max-jobs-per-child 1000\n  bsworker --tubes emails --jobs dist/jobs --url beanstalk://127.0.0.1:11300\n  bsworker --tubes emails --metrics-port 9464\n  bsworker kick --tube emails\n\nExit codes: 0 ok, 1 runtime failure, 2 usage error.',
    )
    .action(async (parsed: ParsedWorkerFlags) => {
      // Not commander's requiredOption: commander checks a parent's required options for its subcommands too.
      const checked = checkRequiredFlags(parsed);
      if ('missing' in checked) program.error(`error: required option '${checked.missing}' not specified`, { exitCode: 2 });
      const { options } = checked;
      const { processes, maxJobsPerChild, maxMemoryPerChild } = options;
      if (processes === undefined && maxJobsPerChild === undefined && maxMemoryPerChild === undefined) {
        io.exit(await runWorker(options));
        return;
      }
      if (options.metricsIpc) program.error('error: --metrics-ipc is set by the supervisor on its children', { exitCode: 2 });
      if (options.maxJobs !== undefined || options.maxMemoryMb !== undefined) {
        program.error('error: with --processes, give the limits as --max-jobs-per-child and --max-memory-per-child', { exitCode: 2 });
      }
      io.exit(await runSupervisor({ ...options, processes: processes ?? 1 }));
    });

  registerOperatingCommands(program, { print: io.print, isTTY: io.isTTY ?? false });
  registerCheckCommand(program, { ...io, isTTY: io.isTTY ?? false });
  registerServeCommand(program, io);
  registerSchedulerCommand(program, io.exit);
  registerSchedulesCommand(program, { print: io.print, isTTY: io.isTTY ?? false });
  // `bsworker help [command]`, as `--help` does. Added last: subcommands copy the help command
  // setting, and `put help f` must still put into a tube called help.
  program.helpCommand(true);

  return program;
}
