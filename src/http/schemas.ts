/**
 * JSON Schemas of what the API answers: the admin layer's shapes (`src/admin/types.ts`) and the error
 * body. Registered once by `$id`, they become the OpenAPI document's `components.schemas`; responses
 * are serialised with `JSON.stringify`, not from these, so a schema documents a shape and never drops a
 * field (the tests check every reply against its schema).
 */

/** A JSON Schema, as Fastify and @fastify/swagger take it. */
export type Schema = Readonly<Record<string, unknown>>;

const integer = { type: 'integer' } as const;
const number = { type: 'number' } as const;
const string = { type: 'string' } as const;
const boolean = { type: 'boolean' } as const;
const nullable = (schema: Schema): Schema => ({ anyOf: [schema, { type: 'null' }] });
const ref = (id: string): Schema => ({ $ref: `${id}#` });
const array = (items: Schema): Schema => ({ type: 'array', items });

/** An object whose every property is required (the admin shapes have no optional field unless said). */
function object(properties: Record<string, Schema>, options: { optional?: readonly string[]; description?: string } = {}): Schema {
  const optional = new Set(options.optional ?? []);
  return {
    type: 'object',
    ...(options.description === undefined ? {} : { description: options.description }),
    properties,
    required: Object.keys(properties).filter((key) => !optional.has(key)),
  };
}

/** The `error` object of every error reply. */
export const errorSchema: Schema = {
  $id: 'Error',
  ...object(
    {
      error: object(
        {
          code: { type: 'string', description: 'Stable and machine-readable: JOB_NOT_FOUND, UNAUTHORIZED, BODY_TOO_LARGE, ...' },
          message: { type: 'string', description: 'One sentence for a person.' },
          issues: array(
            object({ message: string, path: array({ anyOf: [string, integer] }) }, { description: 'What is wrong, and where.' }),
          ),
          server: { type: 'string', description: 'The beanstalkd server that failed (502, 503).' },
        },
        { optional: ['issues', 'server'] },
      ),
    },
    { description: 'Every error reply: a status and this body.' },
  ),
};

const jobCounts = object({ ready: integer, urgent: integer, reserved: integer, delayed: integer, buried: integer, total: integer });

const serverStats = object({
  version: string,
  uptimeSeconds: integer,
  connections: integer,
  jobs: jobCounts,
  maxJobSize: integer,
  binlog: object({
    enabled: boolean,
    currentIndex: integer,
    oldestIndex: integer,
    maxSizeBytes: integer,
    recordsWritten: integer,
    recordsMigrated: integer,
  }),
  draining: boolean,
  counters: { type: 'object', additionalProperties: number, description: "Every numeric field of beanstalkd's `stats`, as it spells it." },
});

/** One configured server. */
export const serverReportSchema: Schema = {
  $id: 'ServerReport',
  ...object({ server: string, up: boolean, error: nullable(string), stats: nullable(serverStats) }),
};

const tubeCountFields = {
  ready: integer,
  urgent: integer,
  reserved: integer,
  delayed: integer,
  buried: integer,
  total: integer,
  deletes: integer,
  using: integer,
  watching: integer,
  waiting: integer,
  pauseSeconds: integer,
  pausedSecondsLeft: integer,
};

/** `unavailable` of the results that cover every server: present only with several servers configured. */
const UNAVAILABLE: Schema = {
  type: 'array',
  items: string,
  description: 'Only with several servers configured: the servers that could not be reached (their part is missing).',
};

/** A tube's counters per server and summed. */
export const tubeReportSchema: Schema = {
  $id: 'TubeReport',
  ...object(
    {
      name: string,
      totals: object(tubeCountFields),
      servers: array(object({ server: string, ...tubeCountFields })),
      unavailable: UNAVAILABLE,
    },
    { optional: ['unavailable'] },
  ),
};

/** Every tube. */
export const tubesReportSchema: Schema = {
  $id: 'TubesReport',
  ...object({ at: string, tubes: array(ref('TubeReport')), unavailable: array(string) }),
};

/** One entry of `meta.failures`, every field checked by the admin layer. Its text is job data: untrusted. */
const failureEntry = object(
  {
    reason: { type: 'string', description: 'failed, crashed, invalid, unregistered, undecodable, dead-lettered, ...' },
    name: string,
    message: string,
    stack: string,
    attempt: number,
    kicks: number,
    worker: object({ host: string, pid: number }),
    server: string,
    job_id: string,
    tube: string,
    at: string,
    duration_ms: number,
    issues: array(object({ message: string, path: array(string) }, { optional: ['path'] })),
    unrecoverable: boolean,
  },
  { optional: ['stack', 'duration_ms', 'issues', 'unrecoverable'] },
);

/** The counters of the jobs a copy replaced (`meta.carried`). */
const carriedCounters = object({
  from: string,
  reserves: integer,
  releases: integer,
  buries: integer,
  kicks: integer,
  timeouts: integer,
});

const failureSummary = object({
  reason: string,
  name: string,
  message: string,
  stackLine: nullable(string),
  attempt: number,
  kicks: number,
  at: string,
});

const deadLetterSummary = object({
  tube: nullable(string),
  jobId: nullable(string),
  name: nullable(string),
  message: nullable(string),
  attempts: nullable(number),
  kicks: nullable(number),
  at: nullable(string),
});

const flowLink = object(
  {
    func_name: string,
    tube: string,
    kwargs: { type: 'object', description: 'Only in a job read by id. Job data: untrusted.' },
    pipe: nullable({ type: 'string', description: "The kwargs key that receives the previous link's return value." }),
  },
  { optional: ['kwargs', 'pipe'] },
);

/** A job's chain, group, chord and reply, as a worker reads them from `meta`. */
const flowDescription = object(
  {
    summary: { type: 'string', description: 'One line for people: `link 2 of 3, then notify; a caller waits for its result`.' },
    chain: nullable(
      object({
        position: { type: 'integer', description: '1-based: link `position` of `of`.' },
        of: integer,
        nextCount: { type: 'integer', description: 'Links after this one.' },
        next: array(flowLink),
      }),
    ),
    group: nullable(object({ tube: { type: 'string', description: 'The barrier tube.' }, barrier: string, callback: nullable(string) })),
    chord: nullable(
      object({
        tube: { type: 'string', description: 'The barrier tube it waits on.' },
        membersLeft: nullable({ type: 'integer', description: 'Jobs in the barrier tube; only in a job read by id.' }),
      }),
    ),
    reply: { type: 'boolean', description: 'A caller waits for the result (the reply token is never shown).' },
    malformed: nullable({ type: 'string', description: 'Why a worker would bury the job as invalid; the parts are null then.' }),
  },
  { description: 'Read from `meta` as a worker reads it; null when the job has no flow.' },
);

/** One job: exactly one of `envelope` and `raw` is non-null. */
export const jobReportSchema: Schema = {
  $id: 'JobReport',
  ...object({
    id: { type: 'string', description: 'Opaque: pass it back as it is (URL-encoded in a path).' },
    server: string,
    tube: string,
    state: { type: 'string', enum: ['ready', 'delayed', 'reserved', 'buried'] },
    priority: integer,
    ageSeconds: integer,
    delaySeconds: integer,
    ttrSeconds: integer,
    timeLeftSeconds: integer,
    reserves: integer,
    timeouts: integer,
    releases: integer,
    buries: integer,
    kicks: integer,
    envelope: nullable(
      object(
        { func_name: string, tube: nullable(string), kwargs: { type: 'object' }, meta: {} },
        { optional: ['meta'], description: 'The body decoded as a bsworker envelope. Job data: untrusted.' },
      ),
    ),
    raw: nullable({ type: 'string', description: 'The whole body as UTF-8 when it is not an envelope. Job data: untrusted.' }),
    decodeError: nullable(string),
    history: nullable(
      object(
        { failures: array(failureEntry), carried: carriedCounters },
        { optional: ['carried'], description: 'The failure history kept in the body (meta.failures, meta.carried), oldest first.' },
      ),
    ),
    lastFailure: nullable(failureSummary),
    deadLetter: nullable(deadLetterSummary),
    flow: nullable(flowDescription),
  }),
};

const scanStop = { type: 'string', enum: ['limit', 'scan-bound', 'deadline', 'end'] } as const;

/** A page of a tube's jobs, newest first. */
export const jobPageSchema: Schema = {
  $id: 'JobPage',
  ...object({
    server: string,
    tube: string,
    state: nullable({ type: 'string', enum: ['ready', 'delayed', 'reserved', 'buried'] }),
    jobs: array(ref('JobReport')),
    scanned: integer,
    startId: nullable(string),
    nextCursor: nullable({ type: 'string', description: 'Pass as `cursor` for the next page; null at the end.' }),
    exhausted: boolean,
    stoppedBy: scanStop,
  }),
};

/** A job put. */
export const putResultSchema: Schema = {
  $id: 'PutResult',
  ...object({ id: string, server: string, tube: string, func_name: string, priority: integer, delaySeconds: integer, ttrSeconds: integer }),
};

/** A kick of buried jobs. */
export const kickResultSchema: Schema = {
  $id: 'KickResult',
  ...object(
    {
      kicked: integer,
      tubes: array(object({ server: string, tube: string, kicked: integer, stillBuried: integer })),
      unavailable: UNAVAILABLE,
    },
    { optional: ['unavailable'] },
  ),
};

/** A kick of one job. */
export const kickJobResultSchema: Schema = {
  $id: 'KickJobResult',
  ...object({
    id: string,
    server: string,
    kicked: { type: 'boolean', enum: [true] },
    from: { type: 'string', enum: ['buried', 'delayed'] },
    tube: string,
  }),
};

/** A job deleted. */
export const deleteJobResultSchema: Schema = {
  $id: 'DeleteJobResult',
  ...object({ id: string, server: string, tube: string, state: string }),
};

/** One dead letter put back. */
export const requeueJobResultSchema: Schema = {
  $id: 'RequeueJobResult',
  ...object({
    server: string,
    deadLetterId: string,
    id: string,
    tube: string,
    priority: integer,
    ttrSeconds: integer,
    deadLetterDeleted: {
      type: 'boolean',
      description: 'False: the new job was inserted but the letter is still there (a duplicate, never a loss).',
    },
  }),
};

const pauseFields = { pauseSeconds: integer, pausedSecondsLeft: integer, previousSecondsLeft: integer };

/** A pause or a resume. */
export const pauseResultSchema: Schema = {
  $id: 'PauseResult',
  ...object(
    { tube: string, ...pauseFields, servers: array(object({ server: string, ...pauseFields })), unavailable: UNAVAILABLE },
    { optional: ['unavailable'] },
  ),
};

/** Dead letters put back. */
export const requeueResultSchema: Schema = {
  $id: 'RequeueResult',
  ...object({
    server: string,
    from: string,
    tube: string,
    requeued: integer,
    jobs: array(object({ server: string, deadLetterId: string, id: string, priority: integer, ttrSeconds: integer })),
    duplicates: array(object({ server: string, deadLetterId: string, id: string, error: string })),
    failed: array(object({ server: string, deadLetterId: string, error: string })),
    otherTube: integer,
    notDeadLetters: integer,
    scanned: integer,
    nextCursor: nullable(string),
    exhausted: boolean,
    stoppedBy: scanStop,
  }),
};

/** Every shared schema, registered with `addSchema` before the routes. */
export const SHARED_SCHEMAS: readonly Schema[] = [
  errorSchema,
  serverReportSchema,
  tubeReportSchema,
  tubesReportSchema,
  jobReportSchema,
  jobPageSchema,
  putResultSchema,
  kickResultSchema,
  kickJobResultSchema,
  deleteJobResultSchema,
  pauseResultSchema,
  requeueResultSchema,
  requeueJobResultSchema,
];

/** A reference to a shared schema by its `$id`, for route schemas. */
export { ref };

/** A success reply's schema with the description the document shows for it. */
export function ok(schema: Schema, description: string): Schema {
  return { description, ...schema };
}

/** Error replies a route can give, for its `response` map: each references {@link errorSchema}. */
export function errorResponses(...statuses: readonly number[]): Record<number, Schema> {
  return Object.fromEntries(statuses.map((status) => [status, { description: ERROR_DESCRIPTIONS[status] ?? 'An error', ...ref('Error') }]));
}

const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The request is not valid (issues say where)',
  401: 'No token, or a wrong one',
  403: 'A state-changing request from another site',
  404: 'No such job, tube or route',
  409: 'The job is in a state that does not allow this',
  413: 'The body is over the limit',
  415: 'The body is not JSON',
  421: 'The Host header does not name this server',
  502: 'beanstalkd may have done it: its reply was lost',
  503: 'beanstalkd is unreachable or refused the work',
};
