/** `GET /api/tasks`: the tasks of the jobs directory `bsworker serve --jobs` loaded, per tube. */
import type { FastifyInstance } from 'fastify';
import { describeTasks } from '../../tasks/describe.js';
import { errorResponses } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { TAGS } from './params.js';

const taskSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    priority: { type: 'integer' },
    delay: { type: 'integer' },
    ttr: { type: 'integer' },
    retries: { type: 'integer' },
    backoff: {
      type: 'object',
      properties: {
        type: { type: 'string', enum: ['fixed', 'exponential'] },
        delaySeconds: { type: 'number' },
        maxDelaySeconds: { type: 'number' },
        jitter: { type: 'boolean' },
      },
    },
    timeoutMs: { type: ['integer', 'null'] },
    redact: { type: 'array', items: { type: 'string' } },
    schema: {
      type: ['object', 'null'],
      properties: {
        vendor: { type: 'string' },
        jsonSchema: {
          type: ['object', 'null'],
          additionalProperties: true,
          description: 'The kwargs’ JSON Schema (draft 2020-12) when the library offers one (Standard JSON Schema), else null.',
        },
      },
      required: ['vendor', 'jsonSchema'],
      description: 'The Standard Schema library that checks the kwargs, or null without one.',
    },
  },
  required: ['name', 'priority', 'delay', 'ttr', 'retries', 'backoff', 'timeoutMs', 'redact', 'schema'],
} as const;

/** Registers the task routes. */
export function registerTaskRoutes(app: FastifyInstance, context: RouteContext): void {
  app.get(
    '/api/tasks',
    {
      schema: {
        tags: [TAGS.tasks],
        summary: 'The registered tasks per tube, with their options and schema',
        description:
          '`loaded` is false when `bsworker serve` was started without `--jobs`: then there is no registry, and `tubes` is empty.',
        response: {
          200: {
            description: 'The registry',
            type: 'object',
            properties: {
              loaded: { type: 'boolean' },
              tubes: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { tube: { type: 'string' }, tasks: { type: 'array', items: taskSchema } },
                  required: ['tube', 'tasks'],
                },
              },
            },
            required: ['loaded', 'tubes'],
          },
          ...errorResponses(401),
        },
      },
    },
    async () => {
      const { registry } = context;
      return registry === undefined ? { loaded: false, tubes: [] } : { loaded: true, tubes: describeTasks(registry.listTasks()) };
    },
  );
}
