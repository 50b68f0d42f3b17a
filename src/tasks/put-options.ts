/** The put defaults and how a job's priority, delay and TTR are chosen and checked. */

import type { PutParams } from '../beanstalk/types.js';
import { assertPriority, assertSeconds, assertTtr } from '../beanstalk/validate.js';
import type { PutOptions } from './types.js';

/**
 * The defaults every put starts from. Priority 1024 leaves room for urgent jobs (beanstalkd counts
 * priorities below 1024 as urgent); 60 s of TTR covers most tasks and is what beanstalkd clients
 * commonly choose. See the README's design notes.
 */
export const PUT_DEFAULTS: Readonly<Required<PutOptions>> = Object.freeze({ priority: 1024, delay: 0, ttr: 60 });

// Unknown keys are refused: a misspelt `delaySeconds: 30` silently ignored would run the job at once.
const KNOWN = new Set(['priority', 'delay', 'ttr', 'name']);
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
export function validatePutOptions(options: PutOptions | undefined, where = ''): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`${where || 'options'}\` to be an object, got ${options === null ? 'null' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      const hint = SUGGEST[key] ? `; did you mean \`${SUGGEST[key]}\`?` : `; expected ${[...KNOWN].map((k) => `\`${k}\``).join(', ')}`;
      throw new TypeError(`Unknown option \`${where}${key}\`${hint}`);
    }
  }
  if (options.priority !== undefined) assertPriority(options.priority, `${where}priority`);
  if (options.delay !== undefined) assertSeconds(options.delay, `${where}delay`);
  if (options.ttr !== undefined) assertTtr(options.ttr, `${where}ttr`);
}

/** Chooses each field from the first layer that sets it (call, task, queue), then {@link PUT_DEFAULTS}. */
export function resolvePutParams(...layers: (PutOptions | undefined)[]): PutParams {
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
