/**
 * The worker command's flags, each described once: its spelling and help, its parser and default, the
 * Worker option it becomes, and how it reaches the children of `--processes`. Commander's options
 * ({@link addWorkerFlags}), the options type the worker and the supervisor run with
 * ({@link WorkerFlagValues}), the Worker's options ({@link workerOptionsFrom}) and each child's arguments
 * ({@link childArgs}) are all read from {@link WORKER_FLAGS}, so adding a flag is one edit here.
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { Logger } from '../logging/logger.js';
import { WORKER_DEFAULTS, type WorkerOptions } from '../worker/options.js';
import { parseUrlList, URL_FLAG } from './ops/common.js';
import { integerIn, parseKeys, parseListenHost, parseLogLevel, parseRedactEnv, parseTube, parseTubes } from './parse.js';

/**
 * How a flag reaches each child of `--processes`:
 * - `'same'`: under its own long flag, with its value (a list goes back to its comma-separated form; a
 *   `--no-` switch is passed when off);
 * - `{ as }`: under another, child-only flag (a per-child limit becomes the child's own limit);
 * - `{ marker }`: when given, this value-less flag instead (the supervisor serves the metrics, the
 *   children answer it over IPC);
 * - `{ never }`: not passed, for the reason given (the supervisor acts on it itself).
 */
export type ChildPassing = 'same' | { readonly as: string } | { readonly marker: string } | { readonly never: string };

/** The Worker options a flag's value becomes, for a flag that is more than a rename. */
export type WorkerMapper<T> = (value: T, context: { readonly jobs: string }) => Partial<WorkerOptions>;

/** The Worker option keys that can take a value of type `T` as it is. */
export type WorkerKeyFor<T> = {
  [K in keyof WorkerOptions]-?: [T] extends [NonNullable<WorkerOptions[K]>] ? K : never;
}[keyof WorkerOptions];

/** One flag of the worker command. `T` is the type of its parsed value. */
export interface FlagSpec<T> {
  /** Commander's spelling, e.g. `-c, --concurrency <n>`; the table's key must be commander's name for it. */
  readonly flags: string;
  readonly description: string;
  /** Parses and validates the text given; absent for a switch, whose value is a boolean. */
  readonly parse?: (value: string) => T;
  /** Commander's default, read when the program is built (some come from the environment). */
  readonly default?: () => T | undefined;
  /** How the help shows the default, when not as the value itself. */
  readonly defaultDescription?: string;
  /** Refused by the command when absent. Not commander's required option: that would bind the subcommands too. */
  readonly required?: true;
  /** Set by bsworker itself, not shown in the help. */
  readonly hidden?: true;
  readonly child: ChildPassing;
  /**
   * The Worker option the value becomes: a key that takes it as it is, or a mapper. `null`: not a Worker
   * option; the CLI acts on it itself (loading, logging, waiting for the server, metrics, the pool).
   */
  readonly worker: WorkerKeyFor<T> | WorkerMapper<T> | null;
}

/** A flag whose value is always there when the command runs: it has a default, or the command requires it. */
export type PresentFlagSpec<T> = FlagSpec<T> & { readonly present: true };

/** A flag that may be absent. */
const flag = <T>(spec: FlagSpec<T>): FlagSpec<T> => spec;
/** A flag that is always there; {@link WORKER_FLAGS}'s unit test checks it has a default or is required. */
const present = <T>(spec: FlagSpec<T>): PresentFlagSpec<T> => ({ ...spec, present: true });
/** A flag the command refuses to run without. */
const required = <T>(spec: FlagSpec<T>): PresentFlagSpec<T> & { readonly required: true } => ({ ...spec, required: true, present: true });

const TABLE = {
  tubes: required({
    flags: '-t, --tubes <tubes>',
    description: 'comma-separated tubes to watch, e.g. emails,reports (required)',
    parse: parseTubes,
    child: 'same',
    worker: 'tubes',
  }),
  jobs: present({
    flags: '-j, --jobs <dir>',
    description: 'directory whose modules register the tasks (.js, .mjs, .cjs, and .ts, .mts, .cts through tsx)',
    parse: String,
    default: () => './jobs',
    child: 'same',
    worker: null,
  }),
  url: flag({ ...URL_FLAG, parse: parseUrlList, child: 'same', worker: 'url' }),
  concurrency: flag({
    flags: '-c, --concurrency <n>',
    description: 'jobs run at once in one process, each on its own connection (default: 1)',
    parse: integerIn(1, 1_000),
    child: 'same',
    worker: 'concurrency',
  }),
  threads: flag({
    flags: '--threads <n>',
    description: 'run task code in n worker threads, for CPU-bound tasks: the keep-alive cannot be blocked (default: off)',
    parse: integerIn(1, 256),
    child: 'same',
    // Each thread imports the jobs directory itself, wherever the worker was started from.
    worker: (size, { jobs }) => ({ threads: { size, jobsDir: resolve(jobs) } }),
  }),
  maxKicks: present({
    flags: '--max-kicks <n>',
    description: 'kicks a failing job gets before a failure deletes (or dead-letters) it',
    parse: integerIn(0),
    default: () => WORKER_DEFAULTS.maxKicks,
    child: 'same',
    worker: 'maxKicks',
  }),
  kickPeriod: flag({
    flags: '--kick-period <seconds>',
    description: "kick the watched tubes' buried jobs this often (default: off)",
    parse: integerIn(1, 86_400),
    child: 'same',
    // Every child may kick: the kick lock makes it one round per tube per period for the whole pool, and
    // a pool whose kicking child is down still kicks.
    worker: 'kickPeriodSeconds',
  }),
  deadLetter: flag({
    flags: '--dead-letter <tube>',
    description: 'at the kick bound, move failed jobs to this tube instead of deleting them',
    parse: parseTube,
    child: 'same',
    worker: 'deadLetterTube',
  }),
  failureRecords: present<boolean>({
    flags: '--no-failure-records',
    description: 'bury failed jobs without their failure record (kept by default on beanstalkd 1.12+)',
    // Commander gives a `--no-` switch its `true` default itself.
    child: 'same',
    worker: 'failureRecords',
  }),
  graceMs: present({
    flags: '--grace-ms <ms>',
    description: 'on SIGTERM, how long running jobs may take to finish',
    parse: integerIn(0, 2_147_483_647),
    default: () => WORKER_DEFAULTS.graceMs,
    child: 'same',
    worker: 'graceMs',
  }),
  logLevel: present({
    flags: '--log-level <level>',
    description: 'fatal, error, warn, info, debug, trace or silent',
    parse: parseLogLevel,
    default: () => process.env.LOG_LEVEL ?? 'info',
    defaultDescription: '$LOG_LEVEL, else info',
    child: 'same',
    worker: null,
  }),
  connectTimeout: flag({
    flags: '--connect-timeout <seconds>',
    description: 'give up (exit 1) when beanstalkd is still unreachable at start after this long (default: wait for ever)',
    parse: integerIn(1, 86_400 * 365),
    // The supervisor waits for the server before the first child starts; a child waits again when the
    // server goes away before it connects.
    child: 'same',
    worker: null,
  }),
  redact: flag<readonly string[]>({
    flags: '--redact <keys>',
    description: 'comma-separated kwargs keys whose values are never logged, e.g. password,token',
    parse: parseKeys,
    default: () => (process.env.BSWORKER_REDACT === undefined ? undefined : parseRedactEnv(process.env.BSWORKER_REDACT)),
    defaultDescription: '$BSWORKER_REDACT, else none',
    child: 'same',
    worker: 'redact',
  }),
  healthFile: flag({
    flags: '--health-file <path>',
    description: 'while running, write the time into this file every 5s (for a container healthcheck); removed on stop',
    parse: String,
    child: { never: 'the supervisor writes it while at least one child is up' },
    worker: null,
  }),
  metricsPort: flag({
    flags: '--metrics-port <port>',
    description: 'serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port, logged)',
    parse: integerIn(0, 65_535),
    // The children serve no port of their own: each answers the supervisor, which serves the sum.
    child: { marker: '--metrics-ipc' },
    worker: null,
  }),
  metricsHost: present({
    flags: '--metrics-host <host>',
    description: 'the address --metrics-port listens on (an IP address or localhost)',
    parse: parseListenHost,
    default: () => '127.0.0.1',
    child: { never: 'the supervisor serves the metrics' },
    worker: null,
  }),
  metricsIpc: flag<boolean>({
    flags: '--metrics-ipc',
    description: "answer the supervisor's metrics requests",
    hidden: true,
    child: { never: 'set by the supervisor on its children, refused from a user with --processes' },
    worker: null,
  }),
  scheduler: flag<boolean>({
    flags: '--scheduler',
    description:
      'also run a scheduler for the schedules the jobs directory declares (one is active among all; with --processes, child 0 runs it)',
    // Every child gets the switch; only child 0 acts on it, so a restarted child 0 takes it up again.
    child: 'same',
    worker: null,
  }),
  processes: flag({
    flags: '--processes <n>',
    description: 'run n worker processes under a supervisor that restarts any that dies (1 to 64)',
    parse: integerIn(1, 64),
    child: { never: 'a child is an ordinary single-process worker' },
    worker: null,
  }),
  maxJobsPerChild: flag({
    flags: '--max-jobs-per-child <n>',
    description: 'replace a worker process after n finished jobs (implies --processes 1)',
    parse: integerIn(1),
    child: { as: '--max-jobs' },
    worker: null,
  }),
  maxMemoryPerChild: flag({
    flags: '--max-memory-per-child <mb>',
    description: 'replace a worker process once its RSS exceeds mb MiB (implies --processes 1)',
    parse: integerIn(16),
    child: { as: '--max-memory-mb' },
    worker: null,
  }),
  // Set by the supervisor on each child; users give the -per-child forms.
  maxJobs: flag({
    flags: '--max-jobs <n>',
    description: 'stop gracefully after n finished jobs',
    parse: integerIn(1),
    hidden: true,
    child: { never: 'the supervisor passes --max-jobs-per-child under this name' },
    worker: null,
  }),
  maxMemoryMb: flag({
    flags: '--max-memory-mb <mb>',
    description: 'stop gracefully once RSS exceeds mb MiB',
    parse: integerIn(16),
    hidden: true,
    child: { never: 'the supervisor passes --max-memory-per-child under this name' },
    worker: null,
  }),
};

type Table = typeof TABLE;
/** The name of a worker flag: commander's attribute name for it, e.g. `maxKicks` for `--max-kicks`. */
export type WorkerFlagName = keyof Table;
type ValueOf<F> = F extends FlagSpec<infer T> ? T : never;
/** Each flag's value type. */
type FlagTypes = { readonly [K in WorkerFlagName]: ValueOf<Table[K]> };
/** Any subset of the flags' values: what the generic walks over the table read. */
type AnyFlagValues = { readonly [K in WorkerFlagName]?: FlagTypes[K] };
type PresentName = { [K in WorkerFlagName]: Table[K] extends { readonly present: true } ? K : never }[WorkerFlagName];

/** The worker command's options once checked: what the worker (and the supervisor) run with. */
export type WorkerFlagValues = { readonly [K in PresentName]: FlagTypes[K] } & {
  readonly [K in Exclude<WorkerFlagName, PresentName>]?: FlagTypes[K];
};

type RequiredName = { [K in WorkerFlagName]: Table[K] extends { readonly required: true } ? K : never }[WorkerFlagName];

/** The options as commander gives them: a required flag may still be missing. */
export type ParsedWorkerFlags = Omit<WorkerFlagValues, RequiredName> & Partial<Pick<WorkerFlagValues, RequiredName>>;

/** Every worker flag, in help order, each with the type of its own value. */
export const WORKER_FLAGS: { readonly [K in WorkerFlagName]: FlagSpec<FlagTypes[K]> } = TABLE;

/** The flag names in help order. */
export const WORKER_FLAG_NAMES = Object.keys(TABLE) as WorkerFlagName[];

/** What commander is told of a flag: the parts that do not depend on the value's type. */
type CommanderView = Pick<FlagSpec<unknown>, 'flags' | 'description' | 'parse' | 'default' | 'defaultDescription' | 'hidden'>;

/** Commander's option for one flag, defaults read now. */
export function commanderOption(name: WorkerFlagName): Option {
  const spec: CommanderView = WORKER_FLAGS[name];
  const option = new Option(spec.flags, spec.description);
  if (spec.parse) option.argParser(spec.parse);
  if (spec.default) option.default(spec.default(), spec.defaultDescription);
  if (spec.hidden) option.hideHelp();
  return option;
}

/** Adds every worker flag to `command`, in the table's order. */
export function addWorkerFlags(command: Command): Command {
  for (const name of WORKER_FLAG_NAMES) command.addOption(commanderOption(name));
  return command;
}

/**
 * The options once every required flag is checked there, or the spelling of the first one missing (as
 * commander's own message names it).
 */
export function checkRequiredFlags(parsed: ParsedWorkerFlags): { readonly options: WorkerFlagValues } | { readonly missing: string } {
  const name = WORKER_FLAG_NAMES.find((candidate) => WORKER_FLAGS[candidate].required && parsed[candidate] === undefined);
  // Checked just above for every required flag, which is what the two types differ by.
  return name === undefined ? { options: parsed as WorkerFlagValues } : { missing: WORKER_FLAGS[name].flags };
}

/** The Worker's options for the command's: a pure function, so the mapping is tested without a server. */
export function workerOptionsFrom(options: WorkerFlagValues, logger: Logger): WorkerOptions {
  const mapped: Partial<WorkerOptions> = {};
  const context = { jobs: options.jobs };
  for (const name of WORKER_FLAG_NAMES) Object.assign(mapped, workerPart(name, options, context));
  return { ...mapped, tubes: options.tubes, logger };
}

/** What one flag contributes to the Worker's options. */
function workerPart<K extends WorkerFlagName>(name: K, options: AnyFlagValues, context: { readonly jobs: string }): Partial<WorkerOptions> {
  const spec: FlagSpec<FlagTypes[K]> = WORKER_FLAGS[name];
  const value = options[name];
  const { worker } = spec;
  if (worker === null) return {};
  if (typeof worker === 'function') return value === undefined ? {} : worker(value, context);
  // An absent value stays an explicit undefined, as the Worker's defaults expect.
  return { [worker]: value };
}

/** The long flag of a spelling: `--concurrency` for `-c, --concurrency <n>`. */
export function longFlag(name: WorkerFlagName): string {
  const { long } = new Option(WORKER_FLAGS[name].flags);
  if (long === undefined) throw new Error(`worker flag ${name} has no long form`);
  return long;
}

function formatValue(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The arguments one flag gives each child, from the supervisor's value of it. */
function childArgsOf(name: WorkerFlagName, value: unknown): string[] {
  const { child } = WORKER_FLAGS[name];
  if (value === undefined || (typeof child === 'object' && 'never' in child)) return [];
  if (typeof child === 'object' && 'marker' in child) return [child.marker];
  const flagName = child === 'same' ? longFlag(name) : child.as;
  // A switch is passed when it differs from its default: a `--no-` one when off, any other when on.
  if (typeof value === 'boolean') return value === !flagName.startsWith('--no-') ? [flagName] : [];
  return [flagName, formatValue(value)];
}

/** The command-line arguments of each child: an ordinary single-process worker, with per-child limits. */
export function childArgs(options: WorkerFlagValues): string[] {
  return WORKER_FLAG_NAMES.flatMap((name) => childArgsOf(name, options[name]));
}
