/**
 * The dashboard's routes on the API server: `/` (the client's shell), `/login`, `/logout` and
 * `/assets/<hash>/<file>`. The pages pass the API's token guard (`auth: false`) and check the session
 * themselves, so that a browser without one is sent to the login form rather than given a JSON 401.
 * The server's guard (src/http/server.ts) reads the session cookie and asks a cookie-authenticated
 * state-changing request for its CSRF token; this file only makes and ends sessions.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenVerifier } from '../http/security.js';
import { type AssetSet, loadAssets } from './assets.js';
import { LoginLimiter } from './login-limit.js';
import { loginPage, notBuiltPage, shellPage } from './pages.js';
import { clearedSessionCookie, type SessionStore, sessionCookie } from './sessions.js';

/**
 * The dashboard's own Content-Security-Policy: scripts and styles from this server only (no inline
 * script, no eval), no frames, forms posting here only. The API's replies keep their stricter one.
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** What the dashboard needs from the server. */
export interface DashboardOptions {
  readonly sessions: SessionStore;
  readonly verifier: TokenVerifier;
  /** The static files; read from disk when not given. */
  readonly assets?: AssetSet;
  /** Wrong logins per address; a new one when not given. */
  readonly logins?: LoginLimiter;
}

const HTML = 'text/html; charset=utf-8';
/** A page's route config: no bearer token needed (the handler checks the session), the dashboard's CSP. */
const PAGE = { auth: false, csp: DASHBOARD_CSP } as const;
const HIDDEN = { hide: true } as const;

/** True when the request came over TLS (then the cookie is `Secure`). */
function overHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

/** Registers the dashboard's routes (in their own context, for the form parser the login needs). */
export async function registerDashboard(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const { sessions, verifier } = options;
  const logins = options.logins ?? new LoginLimiter();
  const assets = options.assets ?? loadAssets();
  await app.register(async (scope) => {
    // Only the login form is urlencoded; the API itself parses JSON alone (see server.ts).
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    scope.get('/', { config: PAGE, schema: HIDDEN }, (request, reply) => {
      if (assets.missing !== null) return reply.code(503).type(HTML).send(notBuiltPage(assets.missing));
      const session = request.sessionId;
      if (session === null) return reply.redirect('/login', 303);
      return reply.type(HTML).send(shellPage(assets.version, sessions.csrfToken(session)));
    });

    scope.get('/login', { config: PAGE, schema: HIDDEN }, (_request, reply) => reply.type(HTML).send(loginPage(assets.version, 'none')));

    scope.post<{ Body: { token?: unknown } }>(
      '/login',
      { config: PAGE, schema: HIDDEN },
      (request: FastifyRequest<{ Body: { token?: unknown } }>, reply: FastifyReply) => {
        // Refused before the token is even looked at: a guess past the bound tells nothing.
        const waitMs = logins.retryAfterMs(request.ip);
        if (waitMs > 0) {
          return reply
            .code(429)
            .header('retry-after', String(Math.ceil(waitMs / 1000)))
            .type(HTML)
            .send(loginPage(assets.version, 'limited'));
        }
        const given = typeof request.body?.token === 'string' ? request.body.token.trim() : '';
        // The API's own constant-time check, on the same header shape.
        if (!verifier.verify(`Bearer ${given}`)) {
          logins.failed(request.ip);
          return reply.code(401).type(HTML).send(loginPage(assets.version, 'wrong'));
        }
        logins.succeeded(request.ip);
        const id = sessions.create();
        return reply.header('set-cookie', sessionCookie(id, overHttps(request))).redirect('/', 303);
      },
    );

    // Behind the guard: a session with its CSRF token (or the bearer token) is needed to log out.
    scope.post('/logout', { config: { csp: DASHBOARD_CSP }, schema: HIDDEN }, (request, reply) => {
      if (request.sessionId !== null) sessions.end(request.sessionId);
      return reply.header('set-cookie', clearedSessionCookie(overHttps(request))).send({ loggedOut: true });
    });

    scope.get<{ Params: { version: string; file: string } }>(
      '/assets/:version/:file',
      { config: { auth: false, csp: DASHBOARD_CSP, cacheControl: 'public, max-age=31536000, immutable' }, schema: HIDDEN },
      (request, reply) => {
        const asset = assets.files.get(request.params.file);
        if (request.params.version !== assets.version || asset === undefined) {
          return reply
            .code(404)
            .header('cache-control', 'no-store')
            .send({ error: { code: 'ROUTE_NOT_FOUND', message: 'no such asset' } });
        }
        return reply.type(asset.contentType).send(asset.body);
      },
    );
  });
}
