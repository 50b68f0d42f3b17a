/** `GET /api/workers`: the workers named by `bsworker serve --worker-metrics`, read from their `/metrics`. */
import type { FastifyInstance } from 'fastify';
import { readWorker } from '../../metrics/scrape.js';
import { errorResponses } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { TAGS } from './params.js';

/** How long one worker's `/metrics` may take to answer. */
const READ_TIMEOUT_MS = 2_000;

const counts = { type: 'object', additionalProperties: { type: 'number' } } as const;

const workerSchema = {
  type: 'object',
  properties: {
    url: { type: 'string' },
    reachable: { type: 'boolean' },
    error: { type: ['string', 'null'] },
    workersUp: { type: ['number', 'null'], description: '`bsworker_worker_up`, summed over a supervisor’s children.' },
    active: { type: ['number', 'null'], description: '`bsworker_jobs_active`: jobs held now.' },
    jobs: { ...counts, description: '`bsworker_jobs_total` by outcome.' },
    tubes: { type: 'object', additionalProperties: counts, description: '`bsworker_jobs_total` by tube, then outcome.' },
    reconnects: { type: ['number', 'null'] },
  },
  required: ['url', 'reachable', 'error', 'workersUp', 'active', 'jobs', 'tubes', 'reconnects'],
} as const;

/** Registers the worker routes. */
export function registerWorkerRoutes(app: FastifyInstance, context: RouteContext): void {
  app.get(
    '/api/workers',
    {
      schema: {
        tags: [TAGS.workers],
        summary: "The workers' own metrics, read now",
        description:
          'Each URL given to `bsworker serve --worker-metrics` is read (2 s each, in parallel); one that does not answer is listed with `reachable: false`. Connections per tube (`watching`, `waiting`) are in the tube counts.',
        response: {
          200: {
            description: 'Every configured worker endpoint',
            type: 'object',
            properties: { workers: { type: 'array', items: workerSchema } },
            required: ['workers'],
          },
          ...errorResponses(401),
        },
      },
    },
    async () => ({ workers: await Promise.all(context.workerMetrics.map((url) => readWorker(url, READ_TIMEOUT_MS))) }),
  );
}
