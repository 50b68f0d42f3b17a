/**
 * The job routes: list a tube's jobs (the admin layer's bounded id scan, paged), put one, read one, kick
 * one, delete one. A put is checked as the library checks one, then, when a jobs directory is loaded,
 * against the registry (an unregistered task is refused) and the task's schema.
 */
import type { FastifyInstance } from 'fastify';
import { checkPutInput, type JobState, type PutInput } from '../../admin/index.js';
import { HttpError } from '../errors.js';
import { errorResponses, ok, ref, type Schema } from '../schemas.js';
import type { RouteContext } from '../types.js';
import { countOf, digits, idParam, TAGS, tubeParam } from './params.js';

/** The body of a put. */
interface PutBody {
  readonly func_name: string;
  readonly kwargs?: Record<string, unknown>;
  readonly options?: { readonly priority?: number; readonly delay?: number; readonly ttr?: number };
}

const putBody: Schema = {
  type: 'object',
  properties: {
    func_name: { type: 'string', minLength: 1, maxLength: 1_000, description: 'The name the task is registered under.' },
    kwargs: { type: 'object', description: 'The keyword arguments, a JSON object (default: {}).' },
    options: {
      type: 'object',
      properties: {
        priority: { type: 'integer', minimum: 0, maximum: 4_294_967_295, description: '0 is the most urgent (default: 1024).' },
        delay: { type: 'integer', minimum: 0, maximum: 4_294_967_295, description: 'Seconds before the job is ready (default: 0).' },
        ttr: { type: 'integer', minimum: 2, maximum: 4_294_967_295, description: 'Seconds a worker may hold the job (default: 60).' },
      },
      additionalProperties: false,
    },
  },
  required: ['func_name'],
  additionalProperties: false,
};

const listQuery: Schema = {
  type: 'object',
  properties: {
    state: {
      type: 'string',
      enum: ['ready', 'delayed', 'reserved', 'buried'],
      description: 'Only jobs in this state (default: every state).',
    },
    cursor: { type: 'string', pattern: '^[0-9]{1,20}$', description: 'The nextCursor of the previous page.' },
    limit: digits('Jobs per page, 1 to 1000 (default: 20).'),
    scan: digits('Job ids examined at most, 1 to 1000000 (default: 5000).'),
    server: { type: 'string', description: 'The server to scan, `host:port`; needed only with several.' },
    func_name: { type: 'string', minLength: 1, maxLength: 200, description: 'Only jobs whose envelope names this task.' },
    q: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: 'Only jobs whose kwargs (as JSON) contain this text, case-insensitive; found within the same scan bounds.',
    },
  },
  additionalProperties: false,
};

/** Names listed in an unknown-task message at most. */
const LISTED_TASKS = 20;

/**
 * With a registry: the task, or a 400 `UNKNOWN_TASK` naming what the tube does register. With a
 * validator too: a 400 `INVALID_KWARGS` carrying the schema's issues, under `["body", "kwargs", ...]`.
 */
async function checkAgainstRegistry(context: RouteContext, input: PutInput): Promise<void> {
  const { registry, validate } = context;
  if (!registry) return;
  const task = registry.findTask(input.tube, input.funcName);
  if (!task) {
    const names = [...new Set(registry.listTasks().flatMap((candidate) => (candidate.tube === input.tube ? [candidate.name] : [])))].sort();
    const known =
      names.length === 0
        ? 'the jobs directory registers no task in that tube'
        : `it registers ${names
            .slice(0, LISTED_TASKS)
            .map((name) => JSON.stringify(name))
            .join(', ')}${names.length > LISTED_TASKS ? `, and ${names.length - LISTED_TASKS} more` : ''}`;
    throw new HttpError(
      400,
      'UNKNOWN_TASK',
      `no task named ${JSON.stringify(input.funcName)} is registered in tube ${JSON.stringify(input.tube)}: ${known}; a worker would bury the job`,
      { issues: [{ path: ['body', 'func_name'], message: 'is not a registered task of this tube' }] },
    );
  }
  if (!validate) return;
  const checked = await validate(task, input.kwargs);
  if (checked.ok) return;
  const issues = checked.issues.map((issue) => ({ message: issue.message, path: ['body', 'kwargs', ...issue.path] }));
  const first = issues[0];
  throw new HttpError(
    400,
    'INVALID_KWARGS',
    `the kwargs do not match the schema of task ${JSON.stringify(task.name)}${first ? `: ${first.path.slice(1).join('.')} ${first.message}` : ''}`,
    { issues },
  );
}

/** Registers the job routes. */
export function registerJobRoutes(app: FastifyInstance, context: RouteContext): void {
  const { admin } = context;

  app.get<{
    Params: { tube: string };
    Querystring: { state?: JobState; cursor?: string; limit?: string; scan?: string; server?: string; func_name?: string; q?: string };
  }>(
    '/api/tubes/:tube/jobs',
    {
      schema: {
        tags: [TAGS.jobs],
        summary: "A page of a tube's jobs, newest first",
        description:
          'beanstalkd cannot list jobs: a page is a bounded scan of recent job ids, newest first; `scanned` and `stoppedBy` say how far it went. Pass `nextCursor` back as `cursor` for the next page.',
        params: tubeParam,
        querystring: listQuery,
        response: { 200: ok(ref('JobPage'), 'The page'), ...errorResponses(400, 401, 404, 503) },
      },
    },
    (request) => {
      const { state, cursor, limit, scan, server, func_name: funcName, q: text } = request.query;
      return admin.jobs(request.params.tube, state ?? null, { cursor, limit: countOf(limit), scan: countOf(scan), server, funcName, text });
    },
  );

  app.post<{ Params: { tube: string }; Body: PutBody }>(
    '/api/tubes/:tube/jobs',
    {
      schema: {
        tags: [TAGS.jobs],
        summary: 'Put a job into the tube, in the standard envelope',
        description:
          'With `bsworker serve --jobs DIR`, the task must be registered in the tube (else 400 UNKNOWN_TASK) and its schema must accept the kwargs (else 400 INVALID_KWARGS with the issues). Without --jobs, any func_name is put.',
        params: tubeParam,
        body: putBody,
        response: { 201: ok(ref('PutResult'), 'The job was put'), ...errorResponses(400, 401, 403, 413, 415, 502, 503) },
      },
    },
    async (request, reply) => {
      const { func_name: funcName, kwargs = {}, options = {} } = request.body;
      const input: PutInput = { tube: request.params.tube, funcName, kwargs, ...options };
      // The checks that need no task come first, so a bad tube or TTR is reported the same with or without --jobs.
      checkPutInput(input);
      await checkAgainstRegistry(context, input);
      const result = await admin.put(input);
      reply.code(201).header('location', `/api/jobs/${encodeURIComponent(result.id)}`);
      return result;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/jobs/:id',
    {
      schema: {
        tags: [TAGS.jobs],
        summary: 'One job: state, counters, envelope and failure history',
        description: 'A body that is not a bsworker envelope is returned whole in `raw` (with `decodeError`), `envelope` null.',
        params: idParam,
        response: { 200: ok(ref('JobReport'), 'The job'), ...errorResponses(400, 401, 404, 503) },
      },
    },
    (request) => admin.job(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/api/jobs/:id/kick',
    {
      schema: {
        tags: [TAGS.jobs],
        summary: 'Kick one buried or delayed job to ready',
        params: idParam,
        response: { 200: ok(ref('KickJobResult'), 'The job was kicked'), ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    (request) => admin.kickJob(request.params.id),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/jobs/:id',
    {
      schema: {
        tags: [TAGS.jobs],
        summary: 'Delete one job (not a reserved one: only its worker can)',
        params: idParam,
        response: { 200: ok(ref('DeleteJobResult'), 'The job was deleted'), ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    (request) => admin.deleteJob(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/api/jobs/:id/requeue',
    {
      schema: {
        tags: [TAGS.jobs],
        summary: 'Put one dead letter back into the tube it failed in',
        description:
          'The letter’s record (`meta.dead_letter.tube`) names the tube; the failure history is kept. The new job is put before the letter is deleted: `deadLetterDeleted: false` means both exist now. 409 NOT_A_DEAD_LETTER for a job without that record.',
        params: idParam,
        response: { 200: ok(ref('RequeueJobResult'), 'The letter was put back'), ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    (request) => admin.requeueJob(request.params.id),
  );
}
