/**
 * The tube routes: counters (`GET /api/tubes`, `GET /api/tubes/{tube}`), and what acts on a whole tube:
 * kick its buried jobs, pause and resume it, put its dead letters back.
 */
import type { FastifyInstance } from 'fastify';
import { errorResponses, ok, ref, type Schema } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { TAGS, tubeParam } from './params.js';

const count = (description: string, minimum = 1): Schema => ({ type: 'integer', minimum, maximum: 4_294_967_295, description });

const kickBody: Schema = {
  type: 'object',
  properties: { bound: count('Kick at most this many (default: every buried job).') },
  additionalProperties: false,
};

const pauseBody: Schema = {
  type: 'object',
  properties: { seconds: count('How long reserves of the tube wait; 0 ends a pause.', 0) },
  required: ['seconds'],
  additionalProperties: false,
};

const requeueBody: Schema = {
  type: 'object',
  properties: {
    from: { type: 'string', minLength: 1, maxLength: 200, description: "The dead-letter tube (the workers' --dead-letter)." },
    limit: count('Put back at most this many (default: all).'),
    cursor: {
      type: 'string',
      pattern: '^[0-9]{1,20}$',
      description: 'Go on below this id: the nextCursor of a requeue that stopped early.',
    },
    scan: count('Examine at most this many job ids (default: 100000).'),
    server: { type: 'string', description: 'The server to scan, `host:port`; needed only with several.' },
  },
  required: ['from'],
  additionalProperties: false,
};

/** Registers the tube routes. */
export function registerTubeRoutes(app: FastifyInstance, context: RouteContext): void {
  const { admin } = context;

  app.get(
    '/api/tubes',
    {
      schema: {
        tags: [TAGS.tubes],
        summary: 'Every tube: counts by state, per server and summed',
        response: { 200: ok(ref('TubesReport'), 'Every tube'), ...errorResponses(401, 503) },
      },
    },
    () => admin.tubes(),
  );

  app.get<{ Params: { tube: string } }>(
    '/api/tubes/:tube',
    {
      schema: {
        tags: [TAGS.tubes],
        summary: "One tube's counts by state, per server and summed",
        params: tubeParam,
        response: { 200: ok(ref('TubeReport'), 'The tube'), ...errorResponses(400, 401, 404, 503) },
      },
    },
    (request) => admin.tube(request.params.tube),
  );

  app.post<{ Params: { tube: string }; Body: { bound?: number } | undefined }>(
    '/api/tubes/:tube/kick',
    {
      schema: {
        tags: [TAGS.tubes],
        summary: "Kick the tube's buried jobs back to ready",
        description: 'Delayed jobs are left alone (kick them one by one).',
        params: tubeParam,
        body: kickBody,
        response: { 200: ok(ref('KickResult'), 'What was kicked'), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    (request) => admin.kick(request.params.tube, request.body?.bound),
  );

  app.post<{ Params: { tube: string }; Body: { seconds: number } }>(
    '/api/tubes/:tube/pause',
    {
      schema: {
        tags: [TAGS.tubes],
        summary: 'Pause the reserves of a tube for some seconds',
        params: tubeParam,
        body: pauseBody,
        response: { 200: ok(ref('PauseResult'), 'The pause now set'), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    (request) => admin.pause(request.params.tube, request.body.seconds),
  );

  app.post<{ Params: { tube: string } }>(
    '/api/tubes/:tube/resume',
    {
      schema: {
        tags: [TAGS.tubes],
        summary: "End a tube's pause now",
        params: tubeParam,
        response: { 200: ok(ref('PauseResult'), 'The pause now set'), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    (request) => admin.resume(request.params.tube),
  );

  app.post<{
    Params: { tube: string };
    Body: { from: string; limit?: number; cursor?: string; scan?: number; server?: string };
  }>(
    '/api/tubes/:tube/requeue',
    {
      schema: {
        tags: [TAGS.tubes],
        summary: 'Put the dead letters that failed in this tube back into it, failure history kept',
        description:
          'Scans the ready jobs of `from`; only the letters whose record names this tube go back. Each is put before its letter is deleted: an interruption leaves a duplicate (listed), never a loss.',
        params: tubeParam,
        body: requeueBody,
        response: {
          200: ok(ref('RequeueResult'), 'What was put back, left alone or duplicated'),
          ...errorResponses(400, 401, 403, 404, 503),
        },
      },
    },
    (request) => admin.requeue({ ...request.body, tube: request.params.tube }),
  );
}
