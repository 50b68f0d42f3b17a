/** `GET /api/servers`: every configured beanstalkd server, up or down, with its stats. */
import type { FastifyInstance } from 'fastify';
import { errorResponses, ref } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { TAGS } from './params.js';

/** Registers the server routes. */
export function registerServerRoutes(app: FastifyInstance, context: RouteContext): void {
  app.get(
    '/api/servers',
    {
      schema: {
        tags: [TAGS.servers],
        summary: 'Every configured server and its stats',
        description: 'A server that does not answer is listed with `up: false` and the reason; this never fails for a down server.',
        response: {
          200: {
            description: 'Every configured server',
            type: 'object',
            properties: { servers: { type: 'array', items: ref('ServerReport') } },
            required: ['servers'],
          },
          ...errorResponses(401),
        },
      },
    },
    async () => ({ servers: await context.admin.servers() }),
  );
}
