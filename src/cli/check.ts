/**
 * `bsworker check [--jobs DIR] [--json]`: imports the jobs directory as a worker would and lists its
 * tubes and tasks with the options each runs with and whether it has a schema. Exits 1 when a module
 * cannot be imported or two functions share a name in one tube, so CI can run it before a deploy. It
 * never connects to beanstalkd.
 */
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { JobLoadError, loadJobs } from '../loader/load-jobs.js';
import { describeTasks, type TaskDescription } from '../tasks/describe.js';
import { listTasks } from '../tasks/registry.js';
import type { BackoffOptions } from '../tasks/types.js';
import { EXIT, formatError } from './errors.js';
import { jsonOption } from './ops/common.js';
import { type Output, printJson, printTable, terminalSafeText } from './output.js';

/** One task in `bsworker check --json`, with the options it runs with (its own, else the defaults). */
export type CheckedTask = TaskDescription;

/** `bsworker check --json` when the jobs loaded. */
export interface CheckJson {
  readonly ok: true;
  /** The jobs directory, resolved. */
  readonly jobs: string;
  /** The modules imported, in import order, relative to the working directory when that is shorter. */
  readonly modules: readonly string[];
  /** Tubes sorted by name, each with its tasks sorted by name. */
  readonly tubes: readonly { readonly tube: string; readonly tasks: readonly CheckedTask[] }[];
}

/** `bsworker check --json` when they did not (exit 1). */
export interface CheckFailureJson {
  readonly ok: false;
  readonly jobs: string;
  readonly error: {
    /** `duplicate-name`: two functions registered under one name in one tube; `load`: any other failure. */
    readonly kind: 'duplicate-name' | 'load';
    /** The module that failed, relative to the working directory when shorter. */
    readonly file: string;
    readonly message: string;
    /** Where in the module it failed: a few lines (see JobLoadError.detail). */
    readonly detail: readonly string[];
  };
}

/** Imports `dir` and describes what it registered. Never throws: a failure is a {@link CheckFailureJson}. */
export async function checkJobs(dir: string): Promise<CheckJson | CheckFailureJson> {
  const jobs = resolve(dir);
  let modules: string[];
  try {
    modules = await loadJobs(jobs);
  } catch (error) {
    const failure = error instanceof JobLoadError ? error : new JobLoadError(dir, error instanceof Error ? error.message : String(error));
    // By name, not class: the jobs may have loaded another copy of bsworker.
    const duplicate = (failure.cause as { name?: unknown } | undefined)?.name === 'DuplicateTaskError';
    return {
      ok: false,
      jobs,
      error: { kind: duplicate ? 'duplicate-name' : 'load', file: failure.file, message: failure.message, detail: failure.detail },
    };
  }
  const tubes = describeTasks(listTasks());
  return { ok: true, jobs, modules: modules.map(shown), tubes };
}

/** Relative to the working directory when that is shorter (jobs/x.ts), as load errors name files. */
function shown(file: string): string {
  const fromCwd = relative(process.cwd(), file);
  return fromCwd === '' || fromCwd.startsWith('..') ? file : fromCwd;
}

/** `exponential 1s..3600s, jitter` or `fixed 30s`. */
function describeBackoff(backoff: Readonly<Required<BackoffOptions>>): string {
  const curve =
    backoff.type === 'fixed' ? `fixed ${backoff.delaySeconds}s` : `exponential ${backoff.delaySeconds}s..${backoff.maxDelaySeconds}s`;
  return backoff.jitter ? `${curve}, jitter` : curve;
}

/** Prints the result as text; a failure goes to stderr as the CLI's other errors do. */
function render(output: Output, result: CheckJson | CheckFailureJson, printError: (line: string) => void): void {
  if (!result.ok) {
    const what = result.error.kind === 'duplicate-name' ? 'duplicate task name' : 'the jobs did not load';
    printError(formatError(new Error(`check failed: ${what}: ${result.error.message}`)));
    for (const line of result.error.detail) printError(terminalSafeText(`    ${line.trimEnd()}`));
    return;
  }
  const tasks = result.tubes.flatMap(({ tube, tasks: list }) => list.map((task) => ({ tube, task })));
  output.print(terminalSafeText(`jobs: ${result.jobs} (${result.modules.length} module(s))`));
  if (tasks.length === 0) {
    output.print('no task is registered: a worker given these jobs would refuse to start');
    return;
  }
  printTable(
    output,
    ['tube', 'task', 'priority', 'delay', 'ttr', 'retries', 'backoff', 'timeout', 'redact', 'schema'],
    tasks.map(({ tube, task }) => [
      tube,
      terminalSafeText(task.name),
      task.priority,
      `${task.delay}s`,
      `${task.ttr}s`,
      task.retries,
      task.retries === 0 ? '-' : describeBackoff(task.backoff),
      task.timeoutMs === null ? '-' : `${task.timeoutMs}ms`,
      task.redact.length === 0 ? '-' : terminalSafeText(task.redact.join(',')),
      task.schema === null ? '-' : terminalSafeText(task.schema.vendor),
    ]),
  );
  const withSchema = tasks.filter(({ task }) => task.schema !== null).length;
  output.print(`${result.tubes.length} tube(s), ${tasks.length} task(s), ${withSchema} with a schema`);
}

/** Where `check` writes, and how it sets the exit code. */
export interface CheckIo extends Output {
  readonly exit: (code: number) => void;
  /** @defaultValue process.stderr */
  readonly printError?: (text: string) => void;
}

/** Registers `check`. */
export function registerCheckCommand(program: Command, io: CheckIo): void {
  program
    .command('check')
    .description('load the jobs directory and list its tubes and tasks with their options; exit 1 if it does not load')
    .option('-j, --jobs <dir>', 'directory whose modules register the tasks', './jobs')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExits 1 when a module cannot be imported or two functions share a name in one tube (for CI before a deploy).\n\nExamples:\n  bsworker check\n  bsworker check --jobs dist/jobs --json',
    )
    .action(async (options: { jobs: string; json?: boolean }) => {
      const result = await checkJobs(options.jobs);
      if (options.json) printJson(io, result);
      else render(io, result, (line) => (io.printError ?? ((text) => process.stderr.write(text)))(`${line}\n`));
      io.exit(result.ok ? EXIT.ok : EXIT.failure);
    });
}
