/**
 * The request parts several routes share: path parameters and number-like query values. Query strings
 * are strings: types are not coerced (a JSON body's `"10"` must not pass for 10), so a count in a query
 * is a string of digits, turned into a number here and range-checked by the admin layer.
 */
import type { Schema } from '../schemas.js';

/** `{tube}`: beanstalkd's own rules (names, length) are checked by the admin layer, with its message. */
export const tubeParam: Schema = {
  type: 'object',
  properties: { tube: { type: 'string', minLength: 1, maxLength: 200, description: 'A tube name.' } },
  required: ['tube'],
};

/** `{id}`: an opaque job id, URL-encoded (with several servers it is `host:port/42`). */
export const idParam: Schema = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 300, description: 'A job id as a reply gave it, URL-encoded.' } },
  required: ['id'],
};

/** A count in a query string: digits. */
export const digits = (description: string): Schema => ({ type: 'string', pattern: '^[0-9]{1,10}$', description });

/** A query value of {@link digits} as a number, or undefined when absent. */
export function countOf(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/** Tags of the OpenAPI document, one per resource. */
export const TAGS = Object.freeze({
  servers: 'servers',
  tubes: 'tubes',
  jobs: 'jobs',
  tasks: 'tasks',
  workers: 'workers',
  schedules: 'schedules',
  health: 'health',
  metrics: 'metrics',
});
