/**
 * The probes and the scrape: `/healthz` (the process is up and serving), `/readyz` (the configured
 * beanstalkd server answers `stats`; with several, at least one of them) and `/metrics` (Prometheus text from the injected registry). The
 * probes need no token: an orchestrator calls them without one, and they say nothing about jobs.
 */
import type { FastifyInstance } from 'fastify';
import { errorResponses, type Schema } from '../schemas.js';
import type { MetricsRegistryLike, MetricsRenderFunction, RouteContext } from '../types.js';
import { TAGS } from './params.js';

/** The exposition format's content type, what an empty prom-client registry reports. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What `/metrics` serves when nothing is injected: a registry with no metric, a valid empty exposition. */
export const EMPTY_METRICS: MetricsRegistryLike = Object.freeze({ contentType: PROMETHEUS_CONTENT_TYPE, metrics: () => '' });

/** One scrape from either form of metrics source. */
async function render(source: MetricsRegistryLike | MetricsRenderFunction): Promise<{ contentType: string; body: string }> {
  if (typeof source === 'function') return source();
  return { contentType: source.contentType, body: await source.metrics() };
}

const serverState: Schema = {
  type: 'object',
  properties: { server: { type: 'string' }, up: { type: 'boolean' }, error: { anyOf: [{ type: 'string' }, { type: 'null' }] } },
  required: ['server', 'up', 'error'],
};

const readyBody: Schema = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    servers: { type: 'array', items: serverState },
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] },
  },
  required: ['ready', 'servers'],
};

/** Registers `/healthz`, `/readyz` and `/metrics`. */
export function registerHealthRoutes(
  app: FastifyInstance,
  context: RouteContext,
  metrics: { readonly source: MetricsRegistryLike | MetricsRenderFunction; readonly auth: boolean },
): void {
  app.get(
    '/healthz',
    {
      config: { auth: false, anyHost: true },
      schema: {
        tags: [TAGS.health],
        summary: 'The process is up and serving (no token needed)',
        security: [],
        response: {
          200: { description: 'Serving', type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'] },
        },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { auth: false, anyHost: true },
      schema: {
        tags: [TAGS.health],
        summary: 'The beanstalkd servers answer (no token needed)',
        description:
          '200 when every configured server answered `stats` just now (with several servers: when at least one did; `servers` says which are down); else 503, naming the servers and why.',
        security: [],
        response: {
          200: { description: 'Every server answered', ...readyBody },
          503: { description: 'A server did not answer', ...readyBody },
        },
      },
    },
    async (_request, reply) => {
      const servers = (await context.admin.servers()).map(({ server, up, error }) => ({ server, up, error }));
      const down = servers.filter((server) => !server.up);
      // Over several servers the API still serves while one is down (it shows it as down): ready while any answers.
      if (down.length === 0 || (context.admin.several && down.length < servers.length)) return { ready: true, servers };
      reply.code(503);
      const message = `${down.length} of ${servers.length} beanstalkd server(s) unreachable: ${down.map((server) => server.server).join(', ')}`;
      return { ready: false, servers, error: { code: 'NOT_READY', message } };
    },
  );

  app.get(
    '/metrics',
    {
      config: { auth: metrics.auth },
      schema: {
        tags: [TAGS.metrics],
        summary: 'Prometheus metrics (text exposition format)',
        description: 'Needs the token unless the server was started with --no-metrics-auth.',
        ...(metrics.auth ? {} : { security: [] }),
        produces: ['text/plain'],
        response: { 200: { description: 'The exposition text.', type: 'string' }, ...errorResponses(401) },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await render(metrics.source);
      reply.header('content-type', contentType);
      return body;
    },
  );
}
