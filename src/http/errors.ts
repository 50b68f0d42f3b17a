/**
 * Every failure of the HTTP API as one JSON shape, `{ "error": { "code", "message", ... } }`, and the one
 * function that picks its status: the admin layer's domain errors, Fastify's own (validation, body
 * limit, media type), and the API's (auth, origin, host). Anything unexpected is a 500 whose message
 * says nothing about the code: the stack goes to the log, never to the client.
 */
import { AdminError, ConflictError, InvalidInputError, NotFoundError, UnavailableError } from '../admin/index.js';

/** One problem with a request, as 400 replies list them: where (`["body", "options", "ttr"]`) and what. */
export interface RequestIssue {
  readonly message: string;
  /** The part of the request first (`body`, `querystring`, `params`), then keys and indexes; `["kwargs", ...]` for a schema's issues. */
  readonly path: readonly (string | number)[];
}

/** The `error` member of every error reply. */
export interface ErrorBody {
  /** Stable and machine-readable, such as `JOB_NOT_FOUND`, `UNAUTHORIZED`, `BODY_TOO_LARGE`. */
  readonly code: string;
  /** One sentence for a person. Quotes request values JSON-escaped; never a stack. */
  readonly message: string;
  /** For 400s: what is wrong and where (a schema's issues, the request's own). */
  readonly issues?: readonly RequestIssue[];
  /** For 502 and 503: the beanstalkd server that failed (`host:port`). */
  readonly server?: string;
}

/** An error the API means to send: a status, a code, a message and maybe issues. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly issues: readonly RequestIssue[] | undefined;
  /** Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    options: { readonly issues?: readonly RequestIssue[]; readonly headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
    this.issues = options.issues;
    this.headers = options.headers ?? {};
  }
}

/** A status, the headers to add and the body: what the error handler sends. */
export interface ErrorReply {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: ErrorBody };
  /** True for a 500: the handler logs the error with its stack. */
  readonly unexpected: boolean;
}

/** Fastify's error codes that are the client's fault, and what the API calls them. */
const FASTIFY_CODES: Readonly<Record<string, { status: number; code: string; message: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE', message: 'the request body is larger than the limit' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'send the body as JSON, with Content-Type: application/json',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: 'INVALID_JSON',
    message: 'the body is empty but Content-Type says JSON: send {} or no Content-Type',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'the body is not valid JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', message: 'the body does not match its Content-Length' },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_URL', message: 'the URL is not valid (a bad percent-encoding?)' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 400, code: 'BAD_URL', message: 'a part of the URL path is too long' },
};

/** The status of each admin error class; `OUTCOME_UNKNOWN` is a 502, the rest of `UnavailableError` 503. */
function adminStatus(error: AdminError): number {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof InvalidInputError) return 400;
  if (error instanceof ConflictError) return 409;
  if (error instanceof UnavailableError) return error.code === 'OUTCOME_UNKNOWN' ? 502 : 503;
  // An AdminError of no known class: still the caller's problem, not a bug.
  return 400;
}

/** The issues of an admin error's `details` when they have the {@link RequestIssue} shape. */
function issuesOf(details: unknown): RequestIssue[] | undefined {
  if (!Array.isArray(details)) return undefined;
  const issues = details.filter(
    (issue): issue is RequestIssue =>
      typeof issue === 'object' && issue !== null && typeof issue.message === 'string' && Array.isArray(issue.path),
  );
  return issues.length > 0 ? issues : undefined;
}

/** Fastify's validation errors (Ajv's), as issues: `["body", "options", "ttr"]`, "must be >= 2". */
function validationIssues(error: {
  validation?: readonly { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}): RequestIssue[] {
  return (error.validation ?? []).map((entry) => {
    const path: (string | number)[] = [error.validationContext ?? 'request'];
    for (const segment of (entry.instancePath ?? '').split('/').slice(1)) {
      const key = segment.replaceAll('~1', '/').replaceAll('~0', '~');
      path.push(/^[0-9]+$/.test(key) ? Number(key) : key);
    }
    const params = entry.params ?? {};
    // Ajv names the missing or extra key in params, not in the path.
    const extra = typeof params.additionalProperty === 'string' ? params.additionalProperty : undefined;
    const missing = typeof params.missingProperty === 'string' ? params.missingProperty : undefined;
    if (extra !== undefined) return { path: [...path, extra], message: 'is not a known field' };
    if (missing !== undefined) return { path: [...path, missing], message: 'is required' };
    return { path, message: entry.message ?? 'is not valid' };
  });
}

function reply(statusCode: number, body: ErrorBody, headers: Record<string, string> = {}, unexpected = false): ErrorReply {
  return { statusCode, headers, body: { error: body }, unexpected };
}

/** How long a client should wait before trying a server that is down again. */
const RETRY_AFTER_SECONDS = '5';

/** The reply for anything thrown while handling a request. */
export function errorReply(error: unknown): ErrorReply {
  if (error instanceof HttpError) {
    return reply(
      error.statusCode,
      { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) },
      { ...error.headers },
    );
  }
  if (error instanceof AdminError) {
    const status = adminStatus(error);
    const issues = error instanceof InvalidInputError ? issuesOf(error.details) : undefined;
    const server = error instanceof UnavailableError ? error.server : undefined;
    return reply(
      status,
      { code: error.code, message: error.message, ...(issues ? { issues } : {}), ...(server === undefined ? {} : { server }) },
      status === 503 ? { 'retry-after': RETRY_AFTER_SECONDS } : {},
    );
  }
  const fastify = error as { code?: unknown; statusCode?: unknown; validation?: unknown; validationContext?: string };
  if (Array.isArray(fastify.validation)) {
    const issues = validationIssues(fastify as Parameters<typeof validationIssues>[0]);
    const first = issues[0];
    const message = first === undefined ? 'the request is not valid' : `${first.path.join('.')} ${first.message}`;
    return reply(400, { code: 'INVALID_REQUEST', message, issues });
  }
  const known = typeof fastify.code === 'string' ? FASTIFY_CODES[fastify.code] : undefined;
  if (known) return reply(known.status, { code: known.code, message: known.message });
  // JSON.parse's SyntaxError, tagged 400 by Fastify's parser; its message quotes the body, so it is not repeated.
  if (error instanceof SyntaxError && fastify.statusCode === 400)
    return reply(400, { code: 'INVALID_JSON', message: 'the body is not valid JSON' });
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return reply(fastify.statusCode, { code: 'BAD_REQUEST', message: 'the request was refused' });
  }
  return reply(500, { code: 'INTERNAL_ERROR', message: 'the server failed to handle the request; the details are in its log' }, {}, true);
}
