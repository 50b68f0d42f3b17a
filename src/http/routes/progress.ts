/**
 * `GET /api/progress`: the latest progress of every running job that reported some, read now from each
 * worker named by `bsworker serve --worker-metrics` (its `/progress`, beside its `/metrics`).
 */
import type { FastifyInstance } from 'fastify';
import { readProgress } from '../../metrics/progress-read.js';
import { errorResponses } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { TAGS } from './params.js';

/** How long one worker may take to answer: short, so one stuck worker does not hold the page. */
const READ_TIMEOUT_MS = 1_000;

const nullableString = { anyOf: [{ type: 'string' }, { type: 'null' }] } as const;

const entrySchema = {
  type: 'object',
  properties: {
    worker: { type: 'string', description: 'The `--worker-metrics` URL of the worker running the job.' },
    jobId: { type: 'string' },
    tube: nullableString,
    task: nullableString,
    value: {
      description:
        'The latest value the task reported (`ctx.progress`), any JSON; when its JSON is over 1 KiB, the first 1 KiB of that JSON as a string and `truncated` true. Job data: untrusted.',
    },
    truncated: { type: 'boolean' },
    at: { type: 'string', description: 'When it was reported, ISO 8601.' },
  },
  required: ['worker', 'jobId', 'tube', 'task', 'value', 'truncated', 'at'],
} as const;

const sourceSchema = {
  type: 'object',
  properties: {
    url: { type: 'string' },
    reachable: { type: 'boolean' },
    error: nullableString,
    jobs: { type: 'integer', description: 'Jobs with progress it listed.' },
    childrenMissing: { type: 'integer', description: 'Under `--processes`: children that did not answer in time.' },
  },
  required: ['url', 'reachable', 'error', 'jobs', 'childrenMissing'],
} as const;

/** Registers the progress route. */
export function registerProgressRoutes(app: FastifyInstance, context: RouteContext): void {
  app.get(
    '/api/progress',
    {
      schema: {
        tags: [TAGS.workers],
        summary: 'The latest progress of running jobs, read from the workers now',
        description:
          'Each URL given to `bsworker serve --worker-metrics` is read at its `/progress` (1 s each, in parallel); one that does not answer is listed in `workers` with `reachable: false`. Only jobs that called `ctx.progress` are listed, each until it ends.',
        response: {
          200: {
            description: 'Running jobs with progress, oldest report first, and every worker read',
            type: 'object',
            properties: { jobs: { type: 'array', items: entrySchema }, workers: { type: 'array', items: sourceSchema } },
            required: ['jobs', 'workers'],
          },
          ...errorResponses(401),
        },
      },
    },
    () => readProgress(context.workerMetrics, READ_TIMEOUT_MS),
  );
}
