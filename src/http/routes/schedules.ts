/**
 * `GET /api/schedules`: the schedules on the chosen server (the one holding the scheduler's lease and
 * markers), each with its next run, and the active scheduler. With `bsworker serve --jobs`, the
 * schedules the jobs declare are listed with their task; markers no loaded module declares are listed
 * too, from what the marker says (a schedule removed from the code leaves its marker behind).
 */
import type { FastifyInstance } from 'fastify';
import { UnavailableError } from '../../admin/errors.js';
import { ConnectionError } from '../../beanstalk/errors.js';
import { readServerSchedules } from '../../scheduler/status.js';
import { errorResponses } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { TAGS } from './params.js';

const nullableString = { anyOf: [{ type: 'string' }, { type: 'null' }] } as const;

const scheduleSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    cron: { type: 'string', description: 'The cron expression (from the declaration, else from the marker).' },
    timezone: { type: 'string' },
    catchUp: { anyOf: [{ type: 'string', enum: ['skip', 'once'] }, { type: 'null' }], description: 'Null when not declared.' },
    task: {
      anyOf: [
        { type: 'object', properties: { tube: { type: 'string' }, name: { type: 'string' } }, required: ['tube', 'name'] },
        { type: 'null' },
      ],
    },
    tube: { type: 'string', description: 'The marker tube, `bsworker.schedule.<name>`.' },
    nextRun: { ...nullableString, description: 'ISO 8601; null when no tick is known.' },
    marker: { type: 'string', enum: ['delayed', 'ready', 'reserved', 'not armed'] },
    declared: { type: 'boolean', description: 'A loaded jobs module declares it (`bsworker serve --jobs`).' },
  },
  required: ['name', 'cron', 'timezone', 'catchUp', 'task', 'tube', 'nextRun', 'marker', 'declared'],
} as const;

const activeSchema = {
  anyOf: [
    {
      type: 'object',
      properties: {
        host: { type: 'string' },
        pid: { type: 'integer' },
        since: { type: 'string' },
        lease: { type: 'string' },
        holding: { type: 'boolean', description: 'False when that scheduler no longer holds its lease: it is gone.' },
      },
      required: ['host', 'pid', 'since', 'lease', 'holding'],
    },
    { type: 'null' },
  ],
} as const;

/** Registers the schedules route. */
export function registerScheduleRoutes(app: FastifyInstance, context: RouteContext): void {
  app.get(
    '/api/schedules',
    {
      schema: {
        tags: [TAGS.schedules],
        summary: 'Schedules, their next run and the active scheduler',
        response: {
          200: {
            description: 'The chosen server, its active scheduler, and every schedule',
            type: 'object',
            properties: { server: { type: 'string' }, active: activeSchema, schedules: { type: 'array', items: scheduleSchema } },
            required: ['server', 'active', 'schedules'],
          },
          ...errorResponses(401, 503),
        },
      },
    },
    async () => {
      try {
        return await readServerSchedules(context.admin.serverNames, context.schedules?.() ?? []);
      } catch (error) {
        if (error instanceof ConnectionError)
          throw new UnavailableError('SERVER_UNAVAILABLE', error.address, error.message, { cause: error });
        throw error;
      }
    },
  );
}
