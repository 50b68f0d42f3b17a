/**
 * The HTTP API's options and the seams other parts plug into: the task registry (with `--jobs`), a
 * kwargs validator (a task's schema) and a metrics source (prom-client). Each is optional and injected,
 * so the server depends on none of them.
 */
import type { Admin } from '../admin/index.js';
import type { Logger } from '../logging/logger.js';
import type { Schedule } from '../scheduler/types.js';
import type { RegisteredTask } from '../tasks/registry.js';

/** The loaded tasks, as the server reads them: `findTask` and `listTasks` of `src/tasks/registry.ts` fit. */
export interface TaskRegistry {
  /** The task registered under `name` in `tube`, or undefined. */
  findTask(tube: string, name: string): RegisteredTask | undefined;
  /** Every registered task. */
  listTasks(): readonly RegisteredTask[];
}

/** One problem a validator found in kwargs: where (keys and indexes below `kwargs`) and what. */
export interface KwargsIssueLike {
  readonly message: string;
  readonly path: readonly (string | number)[];
}

/** What a {@link KwargsValidator} answers (the shape of `validateKwargs` in `src/tasks/schema.ts`). */
export type KwargsValidationLike =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly issues: readonly KwargsIssueLike[] };

/** Checks a job's kwargs against its task's schema; never throws. `validateKwargs` fits. */
export type KwargsValidator = (task: RegisteredTask, kwargs: unknown) => KwargsValidationLike | Promise<KwargsValidationLike>;

/** A prom-client `Registry`, or anything with its two members. */
export interface MetricsRegistryLike {
  /** The exposition format's content type, e.g. `text/plain; version=0.0.4; charset=utf-8`. */
  readonly contentType: string;
  /** The exposition text, rendered for this scrape. */
  metrics(): Promise<string> | string;
}

/** A function that renders one scrape, `{ contentType, body }` (the `MetricsRenderer` of `src/metrics/`). */
export type MetricsRenderFunction = () => Promise<{ readonly contentType: string; readonly body: string }>;

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  /** The servers' operations: every route calls it. The caller owns it (and closes it after the server). */
  readonly admin: Admin;
  /** Workers' `/metrics` URLs (`bsworker --metrics-port`), read by `GET /api/workers`. @defaultValue none */
  readonly workerMetrics?: readonly string[];
  /**
   * The declared schedules (`listSchedules` once the jobs are loaded), listed by `GET /api/schedules`
   * with their task; markers found on the server are listed either way. @defaultValue none
   */
  readonly schedules?: () => readonly Schedule[];
  /**
   * The bearer token every request but the health probes must carry. Give one (from a file or the
   * environment) to listen on a non-loopback address; without one a random token is generated, and the
   * server listens on loopback only.
   * @defaultValue generated
   */
  readonly token?: string;
  /**
   * The loaded jobs directory. With it, `POST /api/tubes/{tube}/jobs` refuses a task it does not register
   * (400 `UNKNOWN_TASK`); without it any func_name is put.
   * @defaultValue none
   */
  readonly registry?: TaskRegistry;
  /** Checks kwargs against the task's schema (with {@link ApiServerOptions.registry}): 400 `INVALID_KWARGS` with the issues. @defaultValue none */
  readonly validate?: KwargsValidator;
  /**
   * What `/metrics` serves: a prom-client registry or a render function.
   * @defaultValue an empty registry (a valid, empty exposition)
   */
  readonly metricsRegistry?: MetricsRegistryLike | MetricsRenderFunction;
  /** False lets `/metrics` be scraped without the token. @defaultValue true */
  readonly metricsAuth?: boolean;
  /**
   * More names the `Host` header may carry (`NAME` or `NAME:PORT`; `*` for any), beside the loopback
   * names and the address listened on.
   * @defaultValue none
   */
  readonly allowedHosts?: readonly string[];
  /** The largest request body, in bytes; a larger one is refused with 413 before it is read. @defaultValue 1 MiB */
  readonly bodyLimitBytes?: number;
  /** Where request lines and unexpected errors go. @defaultValue none (silent) */
  readonly logger?: Logger;
  /**
   * The addresses (IPs or CIDR ranges) of reverse proxies whose `X-Forwarded-For` and
   * `X-Forwarded-Proto` are believed: the client's address (the login bound) and `https` (the cookie's
   * `Secure` flag) are then read from them. Anyone else's are ignored. @defaultValue none
   */
  readonly trustProxy?: readonly string[];
}

/** Where to listen. */
export interface ListenOptions {
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free port. @defaultValue 0 */
  readonly port?: number;
}

/** The defaults of {@link ApiServerOptions} and {@link ListenOptions}, in one place. */
export const API_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  bodyLimitBytes: 1024 * 1024,
  /** Above the requeue's own 30 s bound, so a long requeue finishes rather than being cut. */
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  /** A tube name is at most 200 bytes; a job id `host:port/id` can be longer. */
  maxParamLength: 512,
});

/** What the routes share: the admin layer and the injected parts. */
export interface RouteContext {
  readonly admin: Admin;
  readonly registry: TaskRegistry | undefined;
  readonly validate: KwargsValidator | undefined;
  /** See {@link ApiServerOptions.workerMetrics}. */
  readonly workerMetrics: readonly string[];
  /** See {@link ApiServerOptions.schedules}. */
  readonly schedules: (() => readonly Schedule[]) | undefined;
}
