/** The put defaults and how a job's priority, delay and TTR are chosen and checked. */

import type { PutParams } from '../beanstalk/types.js';
import { assertInteger, assertPriority, assertSeconds, assertTtr } from '../beanstalk/validate.js';
import type { PutDefaults, PutOptions, TaskOptions } from './types.js';

/**
 * The defaults every put starts from. Priority 1024 leaves room for urgent jobs (beanstalkd counts
 * priorities below 1024 as urgent); 60 s of TTR covers most tasks and is what beanstalkd clients
 * commonly choose. See the README's design notes.
 */
export const PUT_DEFAULTS: Readonly<Required<PutDefaults>> = Object.freeze({ priority: 1024, delay: 0, ttr: 60 });

// Unknown keys are refused: a misspelt `delaySeconds: 30` silently ignored would run the job at once.
const PUT_KEYS = new Set(['priority', 'delay', 'ttr', 'key', 'result']);
/** The keys of a queue's defaults: no routing key (it is per call). */
export const DEFAULTS_KEYS: ReadonlySet<string> = new Set(['priority', 'delay', 'ttr']);
// A task has no routing key of its own: the key is per call (a task's every job on one server would be a hot spot).
const TASK_KEYS = new Set(['priority', 'delay', 'ttr', 'name', 'retries', 'backoff', 'timeoutMs', 'redact', 'schema', 'rateLimit']);
const RATE_LIMIT_KEYS = new Set(['max', 'perSeconds']);
const BACKOFF_KEYS = new Set(['type', 'delaySeconds', 'maxDelaySeconds', 'jitter']);
const SUGGEST: Record<string, string> = {
  delaySeconds: 'delay',
  ttrSeconds: 'ttr',
  timeToRun: 'ttr',
  pri: 'priority',
  prio: 'priority',
};

/**
 * Checks put options and throws a TypeError/RangeError that names the option and the value.
 * `where` prefixes the names, as in `defaults.ttr`.
 */
export function validatePutOptions(options: PutOptions | undefined, where = '', known: ReadonlySet<string> = PUT_KEYS): void {
  if (options === undefined) return;
  assertKnownKeys(options, where, known);
  if (options.priority !== undefined) assertPriority(options.priority, `${where}priority`);
  if (options.delay !== undefined) assertSeconds(options.delay, `${where}delay`);
  if (options.ttr !== undefined) assertTtr(options.ttr, `${where}ttr`);
  if (options.result !== undefined && typeof options.result !== 'boolean') {
    throw new TypeError(`Expected \`${where}result\` to be a boolean, got ${typeof options.result}`);
  }
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key.length === 0 || options.key.length > 1_000)) {
    throw new TypeError(
      `Expected \`${where}key\` to be a string of 1 to 1000 characters, got ${typeof options.key === 'string' ? `${options.key.length} characters` : typeof options.key}`,
    );
  }
}

function assertKnownKeys(options: object, where: string, known: ReadonlySet<string>): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `Expected \`${where.replace(/\.$/, '') || 'options'}\` to be an object, got ${options === null ? 'null' : typeof options}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      const hint = SUGGEST[key] ? `; did you mean \`${SUGGEST[key]}\`?` : `; expected ${[...known].map((k) => `\`${k}\``).join(', ')}`;
      throw new TypeError(`Unknown option \`${where}${key}\`${hint}`);
    }
  }
}

/** Checks `queue.task(tube, options)`: put options plus name, retries, backoff, timeoutMs, redact and schema. */
export function validateTaskOptions(options: TaskOptions | undefined): void {
  if (options === undefined) return;
  validatePutOptions(options, '', TASK_KEYS);
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(options.name)}\``);
  }
  if (options.retries !== undefined) assertInteger(options.retries, 'retries', 0, 1_000_000);
  if (options.timeoutMs !== undefined) assertInteger(options.timeoutMs, 'timeoutMs', 1, 2_147_483_647);
  const { redact } = options;
  if (redact !== undefined && (!Array.isArray(redact) || redact.some((key) => typeof key !== 'string' || key === ''))) {
    throw new TypeError("Expected `redact` to be an array of non-empty kwargs keys, e.g. ['password', 'token']");
  }
  if (options.schema !== undefined) assertStandardSchema(options.schema);
  if (options.rateLimit !== undefined) assertRateLimit(options.rateLimit);
  const { backoff } = options;
  if (backoff !== undefined) {
    assertKnownKeys(backoff, 'backoff.', BACKOFF_KEYS);
    if (backoff.type !== undefined && backoff.type !== 'fixed' && backoff.type !== 'exponential') {
      throw new TypeError(`Expected \`backoff.type\` to be 'fixed' or 'exponential', got \`${String(backoff.type)}\``);
    }
    if (backoff.delaySeconds !== undefined) assertSeconds(backoff.delaySeconds, 'backoff.delaySeconds');
    if (backoff.maxDelaySeconds !== undefined) assertSeconds(backoff.maxDelaySeconds, 'backoff.maxDelaySeconds');
    if (backoff.jitter !== undefined && typeof backoff.jitter !== 'boolean') {
      throw new TypeError(`Expected \`backoff.jitter\` to be a boolean, got ${typeof backoff.jitter}`);
    }
  }
}

/**
 * `max` is a whole number of starts (the limiter keeps one timestamp per start, so it is bounded);
 * `perSeconds` may be a fraction, down to a millisecond, and up to what a Node timer can wait.
 */
function assertRateLimit(rateLimit: NonNullable<TaskOptions['rateLimit']>): void {
  assertKnownKeys(rateLimit, 'rateLimit.', RATE_LIMIT_KEYS);
  assertInteger(rateLimit.max, 'rateLimit.max', 1, 1_000_000);
  const { perSeconds } = rateLimit as { perSeconds: unknown };
  if (typeof perSeconds !== 'number' || !(perSeconds >= 0.001 && perSeconds <= 2_147_483)) {
    const got = typeof perSeconds === 'number' ? `\`${perSeconds}\`` : typeof perSeconds;
    const error = typeof perSeconds === 'number' ? RangeError : TypeError;
    throw new error(`Expected \`rateLimit.perSeconds\` to be a number of seconds from 0.001 to 2147483, got ${got}`);
  }
}

/** Throws unless `schema` implements Standard Schema v1 (arktype's schemas are functions, so both kinds pass). */
function assertStandardSchema(schema: unknown): void {
  const props =
    (typeof schema === 'object' || typeof schema === 'function') && schema !== null
      ? (schema as { '~standard'?: { version?: unknown; validate?: unknown } })['~standard']
      : undefined;
  if (typeof props !== 'object' || props === null || typeof props.validate !== 'function') {
    throw new TypeError(
      'Expected `schema` to be a Standard Schema (an object with a `~standard` property, such as a zod, valibot or arktype schema)',
    );
  }
  if (props.version !== 1) {
    throw new TypeError(`Expected \`schema\` to implement Standard Schema version 1, got version \`${String(props.version)}\``);
  }
}

/** Chooses each field from the first layer that sets it (call, task, queue), then {@link PUT_DEFAULTS}. */
export function resolvePutParams(...layers: (PutDefaults | undefined)[]): PutParams {
  let priority: number | undefined;
  let delay: number | undefined;
  let ttr: number | undefined;
  for (const layer of layers) {
    if (!layer) continue;
    priority ??= layer.priority;
    delay ??= layer.delay;
    ttr ??= layer.ttr;
  }
  return {
    priority: priority ?? PUT_DEFAULTS.priority,
    delaySeconds: delay ?? PUT_DEFAULTS.delay,
    ttrSeconds: ttr ?? PUT_DEFAULTS.ttr,
  };
}
