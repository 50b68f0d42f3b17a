/**
 * The HTTP API of `bsworker serve`: Fastify over the admin layer. This file builds the server and its
 * guards (in order: the `Host` header, the token, the origin of a state-changing request), the error
 * replies and the response headers; the routes live in `routes/`, one file per resource.
 *
 * Fastify does what must not be written by hand here: it validates requests against the routes' JSON
 * Schemas, refuses a body over the limit before buffering it (`Content-Length`, or counting a chunked
 * body as it arrives), and feeds the same schemas to the OpenAPI document.
 */
import { STATUS_CODES } from 'node:http';
import { isIP, type Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { registerDashboard } from '../dashboard/routes.js';
import { CSRF_HEADER, SessionStore } from '../dashboard/sessions.js';
import type { Logger } from '../logging/logger.js';
import { isLoopbackHost } from '../util/hosts.js';
import { type ErrorReply, errorReply, HttpError } from './errors.js';
import { registerOpenApi } from './openapi.js';
import { EMPTY_METRICS, registerHealthRoutes } from './routes/health.js';
import { registerJobRoutes } from './routes/jobs.js';
import { registerProgressRoutes } from './routes/progress.js';
import { registerScheduleRoutes } from './routes/schedules.js';
import { registerServerRoutes } from './routes/servers.js';
import { registerTaskRoutes } from './routes/tasks.js';
import { registerTubeRoutes } from './routes/tubes.js';
import { registerWorkerRoutes } from './routes/workers.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { foreignOriginReason, generateToken, HostAllowList, TokenVerifier } from './security.js';
import { API_DEFAULTS, type ApiServerOptions, type ListenOptions, type RouteContext } from './types.js';

declare module 'fastify' {
  /** Per-route settings the guards read (a route's `config`). */
  interface FastifyContextConfig {
    /** False: no token needed (the probes; `/metrics` with `metricsAuth: false`). @defaultValue true */
    auth?: boolean;
    /** True: any `Host` is accepted (the probes, which orchestrators address by pod IP). @defaultValue false */
    anyHost?: boolean;
    /** This route's Content-Security-Policy instead of the API's (the dashboard's pages). @defaultValue the API's */
    csp?: string;
    /** This route's `Cache-Control` on a 200 instead of `no-store` (the dashboard's hashed assets). @defaultValue no-store */
    cacheControl?: string;
  }
  interface FastifyRequest {
    /** The dashboard session the request's cookie names, or null (set by the guard; see src/dashboard/sessions.ts). */
    sessionId: string | null;
  }
}

/** Listening on a non-loopback address was refused: no token was configured. */
export class ListenRefusedError extends Error {
  readonly code = 'TOKEN_REQUIRED';

  constructor(host: string) {
    super(
      `refusing to listen on ${host}, which other machines can reach, without a configured token: give --token-file FILE or set BSWORKER_TOKEN (a generated token is for loopback only)`,
    );
    this.name = 'ListenRefusedError';
  }
}

/** Where a started server listens. */
export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, IPv6 bracketed. */
  readonly url: string;
}

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Headers of every reply: job data is untrusted, so nothing is sniffed, framed, cached or referred. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * JSON with `<`, `>`, `&`, U+2028 and U+2029 escaped: the same value, but no job body can make a reply
 * look like HTML or script to anything that ignores the content type.
 */
export function safeJson(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(
    /[<>&\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The route patterns and their methods, for telling 405 from 404. */
class RouteTable {
  readonly #routes: { segments: string[]; methods: Set<string> }[] = [];

  add(url: string, methods: readonly string[]): void {
    const segments = url.split('/');
    const existing = this.#routes.find((route) => route.segments.join('/') === url);
    if (existing) for (const method of methods) existing.methods.add(method);
    else this.#routes.push({ segments, methods: new Set(methods) });
  }

  /** The methods of the route `path` matches, or none. A `:param` matches any one non-empty segment. */
  methodsFor(path: string): string[] {
    const parts = path.split('/');
    const route = this.#routes.find(
      (candidate) =>
        candidate.segments.length === parts.length &&
        candidate.segments.every((segment, i) => (segment.startsWith(':') ? (parts[i] ?? '') !== '' : segment === parts[i])),
    );
    return route ? [...route.methods].sort() : [];
  }
}

/** The path of a request, without its query, capped for a log line. */
function pathOf(request: FastifyRequest): string {
  return (request.url.split('?')[0] ?? '').slice(0, 300);
}

/** Sends an {@link ErrorReply}; a 500 is logged with its stack first. */
function sendError(reply: FastifyReply, error: unknown, logger: Logger | undefined): FastifyReply {
  const out: ErrorReply = errorReply(error);
  if (out.unexpected) logger?.error({ err: error, method: reply.request.method, path: pathOf(reply.request) }, 'http: request failed');
  // Set here too: a framework error (a bad URL) is answered before the onSend hook is in place.
  return reply.code(out.statusCode).headers(SECURITY_HEADERS).headers(out.headers).send(out.body);
}

/** An answer to a request Node could not even parse (a header too large, garbage): still JSON with a code. */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const code = status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
  const body = safeJson({ error: { code, message: 'the request could not be read as HTTP' } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\nx-content-type-options: nosniff\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** The HTTP API, built and not yet listening. Make one with {@link createApiServer}. */
export class ApiServer {
  /** The bearer token requests must carry: the configured one, or the generated one. */
  readonly token: string;
  /** True when no token was configured and {@link ApiServer.token} was generated: loopback only. */
  readonly tokenGenerated: boolean;
  readonly #app: FastifyInstance;
  readonly #allowedHosts: readonly string[];
  #hosts: HostAllowList;
  #address: ListeningAddress | undefined;
  #closed: Promise<void> | undefined;

  /** @internal Use {@link createApiServer}. */
  constructor(app: FastifyInstance, token: string, tokenGenerated: boolean, allowedHosts: readonly string[]) {
    this.#app = app;
    this.token = token;
    this.tokenGenerated = tokenGenerated;
    this.#allowedHosts = allowedHosts;
    this.#hosts = new HostAllowList(API_DEFAULTS.host, allowedHosts);
  }

  /** @internal The allow-list the `Host` guard reads: it depends on the address listened on. */
  get hosts(): HostAllowList {
    return this.#hosts;
  }

  /** Where the server listens, once {@link ApiServer.listen} resolved. */
  get address(): ListeningAddress | undefined {
    return this.#address;
  }

  /**
   * Starts listening. Refuses ({@link ListenRefusedError}) a host other machines can reach while the
   * token is a generated one; rejects when the address is taken.
   */
  async listen(options: ListenOptions = {}): Promise<ListeningAddress> {
    const host = options.host ?? API_DEFAULTS.host;
    const port = options.port ?? API_DEFAULTS.port;
    if (!isLoopbackHost(host) && this.tokenGenerated) throw new ListenRefusedError(host);
    this.#hosts = new HostAllowList(host, this.#allowedHosts);
    await this.#app.listen({ host, port });
    const bound = this.#app.server.address();
    const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
    const urlHost = isIP(host) === 6 ? `[${host}]` : host;
    this.#address = { host, port: boundPort, url: `http://${urlHost}:${boundPort}` };
    return this.#address;
  }

  /** Stops listening, lets requests in progress finish, closes idle connections. Idempotent; the admin layer is the caller's to close. */
  close(): Promise<void> {
    this.#closed ??= this.#app.close();
    return this.#closed;
  }
}

/** Adds the guards, the headers, the serialiser and the error replies to `app`. */
/** 405 with `Allow` when the path is a route's and the method is not, else 404. */
function unknownRoute(routes: RouteTable, request: FastifyRequest): HttpError {
  const methods = routes.methodsFor(request.url.split('?')[0] ?? '');
  return methods.length > 0
    ? new HttpError(405, 'METHOD_NOT_ALLOWED', `this route takes ${methods.join(', ')}`, { headers: { allow: methods.join(', ') } })
    : new HttpError(404, 'ROUTE_NOT_FOUND', 'no such route: the routes are listed in /api/openapi.json');
}

/** What the guards need. */
interface Guards {
  /** The server, for its host allow-list (set once built). */
  readonly server: () => ApiServer;
  readonly verifier: TokenVerifier;
  readonly sessions: SessionStore;
  readonly routes: RouteTable;
  readonly logger: Logger | undefined;
}

function secure(app: FastifyInstance, { server, verifier, sessions, routes, logger }: Guards): void {
  app.decorateRequest('sessionId', null);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    const host = request.headers.host;
    if (config.anyHost !== true && !server().hosts.allows(host)) {
      throw new HttpError(
        421,
        'MISDIRECTED_REQUEST',
        'the Host header does not name this server (a DNS-rebinding page?); name it with --allowed-host if it is yours',
      );
    }
    const bearer = verifier.verify(request.headers.authorization);
    // A dashboard login (the session cookie) stands for the token; the bearer token wins when both are sent.
    request.sessionId = bearer ? null : (sessions.fromCookieHeader(request.headers.cookie) ?? null);
    if (config.auth !== false && !bearer && request.sessionId === null) {
      const missing = request.headers.authorization === undefined;
      throw new HttpError(
        401,
        'UNAUTHORIZED',
        missing ? 'send the token in the header Authorization: Bearer TOKEN' : 'the bearer token is not the one this server was given',
        { headers: { 'www-authenticate': 'Bearer realm="bsworker"' } },
      );
    }
    if (!SAFE_METHODS.has(request.method)) {
      const why = foreignOriginReason({
        origin: request.headers.origin,
        host,
        'sec-fetch-site': firstValue(request.headers['sec-fetch-site']),
      });
      if (why !== undefined) throw new HttpError(403, 'FOREIGN_ORIGIN', `refused: ${why}`);
      // A browser sends the cookie with any request to this server: only the dashboard's own page knows the CSRF token.
      if (
        config.auth !== false &&
        request.sessionId !== null &&
        !sessions.checkCsrf(request.sessionId, firstValue(request.headers[CSRF_HEADER]))
      ) {
        throw new HttpError(
          403,
          'CSRF_TOKEN_REQUIRED',
          `refused: a request authenticated by the session cookie must carry the page's CSRF token in the header ${CSRF_HEADER}`,
        );
      }
    }
    // Answered now, so the body of a request to no route is never read.
    if (request.is404) throw unknownRoute(routes, request);
  });

  // A POST with no body reads as `{}`, so `curl -X POST .../resume` needs no `-d '{}'` (and a required
  // field still gets its "is required").
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && !SAFE_METHODS.has(request.method)) request.body = {};
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    const { csp, cacheControl } = request.routeOptions.config;
    if (csp !== undefined) reply.header('content-security-policy', csp);
    if (cacheControl !== undefined && reply.statusCode === 200) reply.header('cache-control', cacheControl);
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    logger?.info(
      { method: request.method, path: pathOf(request), status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'http: request',
    );
  });

  app.setReplySerializer(safeJson);
  app.setSerializerCompiler(() => safeJson);
  app.setErrorHandler((error, _request, reply) => sendError(reply, error, logger));
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Builds the HTTP API over `options.admin` (not yet listening: call {@link ApiServer.listen}). Throws a
 * TypeError for an `allowedHosts` value that is not a host name.
 */
export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const token = options.token ?? generateToken();
  const allowedHosts = options.allowedHosts ?? [];
  // Checked now, so a bad --allowed-host fails before anything listens.
  new HostAllowList(API_DEFAULTS.host, allowedHosts);
  const logger = options.logger;
  const routes = new RouteTable();
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? API_DEFAULTS.bodyLimitBytes,
    routerOptions: { maxParamLength: API_DEFAULTS.maxParamLength },
    requestTimeout: API_DEFAULTS.requestTimeoutMs,
    keepAliveTimeout: API_DEFAULTS.keepAliveTimeoutMs,
    // A client's X-Request-Id is not trusted into the logs.
    requestIdHeader: false,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Bodies are JSON and taken as they are: "10" is not 10, an unknown field is an error, not dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    return503OnClosing: false,
    frameworkErrors: (error: FastifyError, _request, reply) => {
      sendError(reply, error, logger);
    },
    clientErrorHandler: answerClientError,
    // Only the named proxies' X-Forwarded-* headers count; by default a client cannot claim https or an address.
    ...(options.trustProxy !== undefined && options.trustProxy.length > 0 ? { trustProxy: [...options.trustProxy] } : {}),
  });
  let server: ApiServer | undefined;
  const verifier = new TokenVerifier(token);
  const sessions = new SessionStore();
  secure(app, { server: () => server as ApiServer, verifier, sessions, routes, logger });
  // Form posts are `text/plain` or urlencoded and need no CORS preflight: only JSON is parsed.
  app.removeContentTypeParser('text/plain');
  app.addHook('onRoute', (route) => {
    routes.add(route.url, Array.isArray(route.method) ? route.method : [route.method as string]);
  });
  // Reached only if a guard let an unknown route through; the onRequest hook answers it first.
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, unknownRoute(routes, request), logger);
  });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  await registerOpenApi(app);

  const context: RouteContext = {
    admin: options.admin,
    registry: options.registry,
    validate: options.validate,
    workerMetrics: options.workerMetrics ?? [],
    schedules: options.schedules,
  };
  registerServerRoutes(app, context);
  registerTubeRoutes(app, context);
  registerJobRoutes(app, context);
  registerTaskRoutes(app, context);
  registerWorkerRoutes(app, context);
  registerProgressRoutes(app, context);
  registerScheduleRoutes(app, context);
  registerHealthRoutes(app, context, { source: options.metricsRegistry ?? EMPTY_METRICS, auth: options.metricsAuth ?? true });
  await registerDashboard(app, { sessions, verifier });
  await app.ready();
  server = new ApiServer(app, token, options.token === undefined, allowedHosts);
  return server;
}
