/**
 * The process-wide schedule registry: name -> schedule. Like the task registry (src/tasks/registry.ts)
 * it is a Map hung off `globalThis` under a `Symbol.for` key, so that two copies of bsworker in one
 * process (the CLI from one, the jobs importing another) see the same schedules.
 *
 * Everything is checked when a schedule is declared, which is when its jobs module is imported: a typo
 * in a cron expression or a time zone fails `bsworker check` and the scheduler's start, not a tick at
 * three in the morning.
 */
import { assertPriority, assertTtr, assertTubeName, describe } from '../beanstalk/validate.js';
import { encodeCallText } from '../envelope/envelope.js';
import { getTaskMetadata } from '../tasks/metadata.js';
import type { JobQueue } from '../tasks/queue.js';
import { assertTimeZone, compileCron } from './cron.js';
import { MAX_SCHEDULE_NAME_BYTES } from './markers.js';
import type { CatchUp, Schedule, ScheduleOptions } from './types.js';

/** The catch-up policy of a schedule that does not choose one (see the README's "Schedules"). */
export const DEFAULT_CATCH_UP: CatchUp = 'skip';
/** The time zone of a schedule that does not choose one. */
export const DEFAULT_TIMEZONE = 'UTC';

const OPTION_KEYS: ReadonlySet<string> = new Set(['timezone', 'catchUp', 'priority', 'ttr']);

/** A second schedule declared under a name already taken in this process. */
export class DuplicateScheduleError extends Error {
  constructor(name: string) {
    super(`A schedule named \`${name}\` is already declared: schedule names are unique (they name the schedule's marker tube)`);
    this.name = 'DuplicateScheduleError';
  }
}

type Registry = Map<string, Schedule>;

const REGISTRY_KEY = Symbol.for('bsworker.schedules.v1');

function registry(): Registry {
  const holder = globalThis as { [REGISTRY_KEY]?: Registry };
  let found = holder[REGISTRY_KEY];
  if (!(found instanceof Map)) {
    found = new Map();
    Object.defineProperty(holder, REGISTRY_KEY, { value: found, enumerable: false, configurable: false, writable: false });
  }
  return found;
}

/**
 * Declares the schedule `name`: a job for `task` with `kwargs` at every tick of `cron`. What
 * `queue.schedule()` calls. Throws a TypeError or RangeError saying what is wrong with any argument,
 * and a {@link DuplicateScheduleError} for a name already declared.
 */
export function defineSchedule(
  queue: JobQueue,
  name: string,
  cron: string,
  task: unknown,
  kwargs: unknown,
  options: ScheduleOptions = {},
): Schedule {
  assertScheduleName(name);
  if (typeof cron !== 'string') throw new TypeError(`Expected \`cron\` to be a cron expression (a string), got ${describe(cron)}`);
  const metadata = getTaskMetadata(task);
  if (metadata === undefined) {
    const shown = typeof task === 'function' && task.name ? `\`${task.name}\`` : describe(task);
    throw new TypeError(`Expected \`task\` of schedule \`${name}\` to be a registered task (queue.task(tube)(fn)), got ${shown}`);
  }
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`Expected schedule options to be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`Unknown schedule option \`${key}\`: expected ${[...OPTION_KEYS].join(', ')}`);
  }
  const timezone = options.timezone ?? DEFAULT_TIMEZONE;
  assertTimeZone(timezone);
  const catchUp = options.catchUp ?? DEFAULT_CATCH_UP;
  if (catchUp !== 'skip' && catchUp !== 'once') {
    throw new TypeError(`Expected \`catchUp\` to be 'skip' or 'once', got ${describe(catchUp)}`);
  }
  if (options.priority !== undefined) assertPriority(options.priority);
  if (options.ttr !== undefined) assertTtr(options.ttr);
  compileCron(cron, timezone);
  // The body every tick will send, encoded once now: kwargs JSON cannot carry fail here, not at a tick.
  const encoded = encodeCallText(metadata.name, metadata.tube, kwargs ?? {});
  const all = registry();
  if (all.has(name)) throw new DuplicateScheduleError(name);
  const schedule: Schedule = Object.freeze({
    name,
    cron,
    timezone,
    catchUp,
    task: metadata,
    kwargs: encoded.kwargs,
    priority: options.priority,
    ttr: options.ttr,
    queue,
  });
  all.set(name, schedule);
  return schedule;
}

/** Throws unless `name` can name a schedule: tube-name characters, short enough for its marker tube. */
export function assertScheduleName(name: unknown): asserts name is string {
  assertTubeName(name, 'name');
  if (name.length > MAX_SCHEDULE_NAME_BYTES) {
    throw new RangeError(
      `Expected the schedule \`name\` to be at most ${MAX_SCHEDULE_NAME_BYTES} bytes (it becomes part of its marker tube's name), got ${name.length}`,
    );
  }
}

/** Every declared schedule, in declaration order. */
export function listSchedules(): Schedule[] {
  return [...registry().values()];
}

/** The schedule declared as `name`, or undefined. */
export function findSchedule(name: string): Schedule | undefined {
  return registry().get(name);
}

/** Removes a schedule (for tests that declare and drop schedules). Returns whether it was there. */
export function unregisterSchedule(name: string): boolean {
  return registry().delete(name);
}
