/**
 * Puts spread over several servers. Round-robin by default; with a `key`, by rendezvous hashing (see
 * hash.ts), so related jobs land on one server and only a skipped server's keys move. A server that
 * cannot be reached, or answers DRAINING or OUT_OF_MEMORY, is skipped for a backoff period (250 ms
 * doubling to 5 s) and the put goes to the next one.
 *
 * A put moves to another server only when it is certain the first did not insert it: the connect
 * failed, the put never left this process (see `isNotSent`), or the server refused it (DRAINING,
 * OUT_OF_MEMORY). A put that was written and got no reply rejects with PutOutcomeUnknownError, never
 * retried, because the job may be on that server (see the README's "Several servers: idempotency").
 * JOB_TOO_BIG and bad input are the caller's, and reject at once.
 *
 * With every server skipped, a put waits for the first to come back, up to its bound, then rejects with
 * ConnectionError. One server never goes through here: JobQueue keeps its single-connection path.
 */
import { ConnectionError, DrainingError, isNotSent, OutOfMemoryError } from '../beanstalk/errors.js';
import { type ConnectFunction, LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, PutParams } from '../beanstalk/types.js';
import { backoffDelay } from '../util/backoff.js';
import { rankFor } from './hash.js';
import { qualifyId } from './job-id.js';
import type { NamedServer } from './server-list.js';

/** The skip periods and the bound of one connect while other servers may be up. */
export const ROUTING_DEFAULTS = Object.freeze({
  /** The first skip of a failing server, doubling up to {@link ROUTING_DEFAULTS.skipMaxMs}. */
  skipInitialMs: 250,
  skipMaxMs: 5_000,
  /**
   * One connect to one server: a server that accepts TCP but does not answer (SIGSTOP, a hung host)
   * costs at most this before the put moves on, so failover stays within about a second.
   */
  connectAttemptMs: 1_000,
});

/** Options of {@link PutRouter}. */
export interface PutRouterOptions {
  readonly servers: readonly NamedServer[];
  /** The bound of one put, waits for a skipped server included; also each connection's stall bound. */
  readonly connectTimeoutMs: number;
  readonly connect?: ConnectFunction;
  /** Called when a server is skipped, with why and for how long. */
  readonly onSkip?: (server: string, error: unknown, skipMs: number) => void;
}

/** One server of the set, with its connection and when it may be tried again. */
class RoutedServer {
  readonly name: string;
  readonly connection: LazyConnection;
  /** `Date.now()` before which the server is skipped. */
  skippedUntil = 0;
  #failures = 0;

  constructor(server: NamedServer, options: PutRouterOptions) {
    this.name = server.name;
    this.connection = new LazyConnection({
      address: server.address,
      connectTimeoutMs: Math.min(options.connectTimeoutMs, ROUTING_DEFAULTS.connectAttemptMs),
      // One attempt per use: an unreachable server is skipped, not waited out, while others may be up.
      retry: false,
      stallTimeoutMs: options.connectTimeoutMs,
      unrefWhenIdle: true,
      ...(options.connect === undefined ? {} : { connect: options.connect }),
    });
  }

  /** Counts a failure and starts (or lengthens) the skip; returns its length. */
  fail(now: number): number {
    this.#failures += 1;
    const skipMs = Math.round(
      backoffDelay(this.#failures, { initial: ROUTING_DEFAULTS.skipInitialMs, max: ROUTING_DEFAULTS.skipMaxMs, jitter: 0.2 }),
    );
    this.skippedUntil = now + skipMs;
    return skipMs;
  }

  succeed(): void {
    if (this.#failures !== 0) {
      this.#failures = 0;
      this.skippedUntil = 0;
    }
  }
}

/** True when `error` proves the put was not inserted, so another server may take it. */
function safeToMove(error: unknown): boolean {
  return isNotSent(error) || error instanceof DrainingError || error instanceof OutOfMemoryError;
}

/** Puts over several servers; see the module comment. */
export class PutRouter {
  readonly #servers: RoutedServer[];
  readonly #names: readonly string[];
  readonly #options: PutRouterOptions;
  #next = 0;

  constructor(options: PutRouterOptions) {
    if (options.servers.length < 2) throw new TypeError('PutRouter is for two or more servers');
    this.#options = options;
    this.#servers = options.servers.map((server) => new RoutedServer(server, options));
    this.#names = options.servers.map((server) => server.name);
    // Each process starts its rotation somewhere else: short-lived producers (a CLI put, a cron
    // script) would otherwise all send their first put to the first server.
    this.#next = Math.floor(Math.random() * this.#servers.length);
  }

  /** The servers' names, in the order given. */
  get names(): readonly string[] {
    return this.#names;
  }

  /**
   * Puts `body` on one server; resolves to its qualified id (`host:port/id`). `key` picks the server by
   * hashing; without one, the next in turn. Rejects after `deadline` (a `Date.now()` time) when no
   * server took it.
   */
  put(tube: string, body: Buffer, params: PutParams, key: string | undefined, deadline: number): Promise<string> {
    const order = this.#order(key);
    // The common case, without an async frame: the first choice is up and connected.
    const first = this.#servers[order[0] as number] as RoutedServer;
    const open = first.skippedUntil <= Date.now() ? first.connection.current : undefined;
    if (open) {
      return open.putInTube(tube, body, params).then(
        (id) => {
          first.succeed();
          return qualifyId(first.name, id);
        },
        (error: unknown) => this.#slowPut(order, tube, body, params, deadline, error, first),
      );
    }
    return this.#slowPut(order, tube, body, params, deadline, undefined, undefined);
  }

  /** The server order for one put: the key's ranking, or a rotation that starts one further each time. */
  #order(key: string | undefined): number[] {
    if (key !== undefined) return rankFor(key, this.#names);
    const count = this.#servers.length;
    const start = this.#next;
    this.#next = (start + 1) % count;
    const order = new Array<number>(count);
    for (let i = 0; i < count; i++) order[i] = (start + i) % count;
    return order;
  }

  /** Walks the order (again and again, waiting out skips) until a server inserts the job or the deadline passes. */
  async #slowPut(
    order: readonly number[],
    tube: string,
    body: Buffer,
    params: PutParams,
    deadline: number,
    firstError: unknown,
    failed: RoutedServer | undefined,
  ): Promise<string> {
    let lastError: unknown;
    if (failed) {
      if (!safeToMove(firstError)) throw this.#settleFailure(failed, firstError);
      this.#skip(failed, firstError);
      lastError = firstError;
    }
    for (;;) {
      for (const index of order) {
        const server = this.#servers[index] as RoutedServer;
        if (server.skippedUntil > Date.now()) continue;
        let connection: Beanstalk;
        try {
          connection = server.connection.current ?? (await server.connection.get(deadline));
        } catch (error) {
          // A closed router (or a bug) is not a server to skip.
          if (!(error instanceof ConnectionError)) throw error;
          // A connect that failed inserted nothing.
          this.#skip(server, error);
          lastError = error;
          continue;
        }
        try {
          const id = await connection.putInTube(tube, body, params);
          server.succeed();
          return qualifyId(server.name, id);
        } catch (error) {
          if (!safeToMove(error)) throw this.#settleFailure(server, error);
          this.#skip(server, error);
          lastError = error;
        }
      }
      const now = Date.now();
      if (now >= deadline) {
        throw new ConnectionError(
          this.#names.join(','),
          `no beanstalkd server took the job within ${this.#options.connectTimeoutMs} ms (the job was not put; last: ${messageOf(lastError)})`,
          { command: 'put', cause: lastError },
        );
      }
      // Every server is skipped: wait for the first to come back (or the deadline), then try again.
      const back = Math.min(...this.#servers.map((server) => server.skippedUntil));
      await new Promise((resolve) => setTimeout(resolve, Math.max(10, Math.min(back, deadline) - now)));
    }
  }

  /** A failure the put cannot move on from: a lost reply also marks its server, for the puts that follow. */
  #settleFailure(server: RoutedServer, error: unknown): unknown {
    if (error instanceof ConnectionError) this.#skip(server, error);
    return error;
  }

  #skip(server: RoutedServer, error: unknown): void {
    const skipMs = server.fail(Date.now());
    this.#options.onSkip?.(server.name, error, skipMs);
  }

  /**
   * The smallest `max-job-size` of the servers that answer now (connecting to each once), so that a
   * batch can be checked before its first put; rejects with ConnectionError when none answers.
   */
  async maxJobSize(deadline: number): Promise<number> {
    const sizes = await Promise.all(
      this.#servers.map(async (server) => {
        try {
          return (server.connection.current ?? (await server.connection.get(deadline))).maxJobSize;
        } catch {
          return undefined;
        }
      }),
    );
    const known = sizes.filter((size): size is number => size !== undefined);
    if (known.length === 0) throw new ConnectionError(this.#names.join(','), 'no beanstalkd server could be reached', { command: 'put' });
    return Math.min(...known);
  }

  /** Closes every connection. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map((server) => server.connection.close()));
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
