/**
 * The admin layer: what an operator can see and do, for the CLI's operating commands, the HTTP API and
 * the dashboard alike. It returns the documented shapes of `types.ts` and throws the errors of
 * `errors.ts`; it parses no flags, prints nothing and knows no exit codes or status codes.
 *
 * Built from a list of server URLs. Each server has one connection, opened on first use and reused by
 * every later call (see `servers.ts`); {@link Admin.close} closes them. With several servers, what
 * covers them all goes on past one that is down and names it (`unavailable`, see `spread.ts`), job ids
 * are qualified (`host:port/42`), and puts are spread as a producer spreads them (a PutRouter).
 */
import { formatAddress, parseServerUrl } from '../beanstalk/address.js';
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import { PutRouter } from '../servers/put-router.js';
import { parseServerList, type ServerUrls } from '../servers/server-list.js';
import { InvalidInputError, NotFoundError, toAdminError } from './errors.js';
import { checkTube, locateId } from './input.js';
import { checkState, deleteOne, kickOne, type ListOptions, listJobs, peekState, readJob, scanTube } from './jobs.js';
import { deleteBuriedJobs, kickTubes, pauseTube } from './operate.js';
import { type KwargsCheck, type PutInput, putJob, putRouted } from './put.js';
import { readOverview, readServers, readTube } from './read.js';
import { type RequeueOptions, requeueDeadLetters, requeueOne } from './requeue.js';
import { AdminServer } from './servers.js';
import type {
  DeleteBuriedResult,
  DeleteJobResult,
  JobPage,
  JobReport,
  JobState,
  KickJobResult,
  KickResult,
  Overview,
  PauseResult,
  PutResult,
  RequeueJobResult,
  RequeueResult,
  ServerReport,
  TubeReport,
  TubesReport,
} from './types.js';

/** Options of {@link Admin}; every field is optional. */
export interface AdminOptions {
  /**
   * The servers: each `beanstalk://host:port`, `host:port` or `host`; a string may hold a
   * comma-separated list (`'a:11300,b:11300'`), as `--url` and `BEANSTALKD_URL` do.
   * @defaultValue `BEANSTALKD_URL` from the environment (a list too), else `'127.0.0.1:11300'`
   */
  readonly urls?: ServerUrls;
  /**
   * Act on this one of the configured servers only (`--server`): its `host:port` as listed, or any URL
   * that names it. Ids stay qualified when several are configured. `SERVER_NOT_FOUND` when it is not
   * one of them.
   * @defaultValue every configured server
   */
  readonly server?: string;
  /**
   * How long opening a connection may take. A refused connection fails at once (no retry: a server that
   * is down is reported, not waited for).
   * @defaultValue 5000
   */
  readonly connectTimeoutMs?: number;
  /**
   * The deadline of every command: a connection whose server sends nothing this long while commands
   * wait for replies is dropped, they fail with `SERVER_UNAVAILABLE`, and the next call reconnects.
   * @defaultValue 10000
   */
  readonly stallTimeoutMs?: number;
  /** Checks kwargs before {@link Admin.put} (a task's schema); see {@link KwargsCheck}. @defaultValue none */
  readonly checkKwargs?: KwargsCheck;
  /** Opens connections; for tests. @defaultValue BeanstalkConnection.connect */
  readonly connect?: ConnectFunction;
  /** The clock of `at` in readings; for tests. @defaultValue `() => new Date()` */
  readonly now?: () => Date;
}

/** The defaults of {@link AdminOptions}. */
export const ADMIN_DEFAULTS = Object.freeze({ connectTimeoutMs: 5_000, stallTimeoutMs: 10_000 });

/** Options of {@link Admin.jobs}: the page, and which server when several are configured. */
export interface JobsOptions extends ListOptions {
  /** The server to scan (`host:port`); needed only when several are configured. */
  readonly server?: string;
}

/** The operating API over a list of beanstalkd servers. */
export class Admin {
  readonly #servers: readonly AdminServer[];
  /** Every configured server's name, `--server` or not: with more than one, ids are qualified. */
  readonly #configured: readonly string[];
  readonly #checkKwargs: KwargsCheck | undefined;
  readonly #now: () => Date;
  readonly #connectTimeoutMs: number;
  readonly #connect: ConnectFunction | undefined;
  /** With several servers, what spreads {@link Admin.put}; made on the first put. */
  #router: PutRouter | undefined;
  #closed = false;

  constructor(options: AdminOptions = {}) {
    if (Array.isArray(options.urls) && options.urls.length === 0) throw new TypeError('Expected `urls` to name at least one server');
    const list = parseServerList(options.urls);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? ADMIN_DEFAULTS.connectTimeoutMs;
    this.#connect = options.connect;
    const connect = {
      connectTimeoutMs: this.#connectTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs ?? ADMIN_DEFAULTS.stallTimeoutMs,
      ...(options.connect === undefined ? {} : { connect: options.connect }),
    };
    this.#configured = list.map((server) => server.name);
    const chosen = options.server === undefined ? list : [pickServer(list, options.server)];
    this.#servers = chosen.map((server) => new AdminServer(server.address, connect));
    this.#checkKwargs = options.checkKwargs;
    this.#now = options.now ?? (() => new Date());
  }

  /** The servers acted on, `host:port`, in order: the values of every `server` field. */
  get serverNames(): readonly string[] {
    return this.#servers.map((server) => server.name);
  }

  /**
   * Every configured server, the `server` option aside. More than one means ids are qualified and the
   * results that cover every server carry `unavailable`.
   */
  get configuredServers(): readonly string[] {
    return this.#configured;
  }

  /** True when several servers are configured: ids are `host:port/42`, results name the servers that did not answer. */
  get several(): boolean {
    return this.#configured.length > 1;
  }

  /** Every server: up or down (with the reason), and its stats. Never throws for a server that is down. */
  async servers(): Promise<ServerReport[]> {
    return readServers(this.#servers);
  }

  /** Every tube with its counters per server and summed. Throws `SERVER_UNAVAILABLE` only when no server answered. */
  async tubes(): Promise<TubesReport> {
    const { at, tubes, unavailable } = await readOverview(this.#servers, true, this.#now);
    return { at, tubes, unavailable };
  }

  /** {@link Admin.servers} and {@link Admin.tubes} in one reading, as `stats` and `top` show them. */
  async overview(): Promise<Overview> {
    return readOverview(this.#servers, true, this.#now);
  }

  /**
   * One tube; {@link NotFoundError} (`TUBE_NOT_FOUND`) when no server that answered has it. With several
   * servers, `unavailable` names those that did not.
   */
  async tube(name: string): Promise<TubeReport> {
    return readTube(this.#servers, checkTube(name), this.several);
  }

  /** One job: state, counters, decoded body, failure history. {@link NotFoundError} (`JOB_NOT_FOUND`). */
  async job(id: string): Promise<JobReport> {
    const located = this.#locate(id);
    return readJob(located.server, located.id, String(id).trim(), this.#formatId);
  }

  /** The next ready, the next delayed or the oldest buried job of a tube; `NO_JOB_IN_STATE` when none. */
  async peek(tube: string, state: 'ready' | 'delayed' | 'buried'): Promise<JobReport> {
    return peekState(this.#servers, tube, state, this.#formatId);
  }

  /**
   * A page of a tube's jobs in `state` (every state when null), newest first, found by a bounded scan of
   * recent ids (see the README's "Listing jobs"). Pass `nextCursor` back as `cursor` for the next page.
   */
  async jobs(tube: string, state: JobState | null, options: JobsOptions = {}): Promise<JobPage> {
    return listJobs(this.#server(options.server), tube, state === null ? null : checkState(state), options, this.#formatId);
  }

  /** Like {@link Admin.jobs} but only the ids (no bodies are read): for counting, or acting on them. */
  async jobIds(tube: string, state: JobState | null, options: JobsOptions = {}): Promise<{ ids: string[]; page: Omit<JobPage, 'jobs'> }> {
    const server = this.#server(options.server);
    const { matches, page } = await scanTube(server, tube, state === null ? null : checkState(state), options);
    return { ids: matches.map((stats) => this.#formatId(server, stats.id)), page: { tube, state, ...page } };
  }

  /**
   * The largest body a put may carry, in bytes: a reader of kwargs can stop there. With several servers,
   * the smallest `max-job-size` of those that answer.
   */
  async maxJobSize(): Promise<number> {
    const router = this.#putRouter();
    if (router === undefined) return this.#first.run(async (connection) => connection.maxJobSize);
    try {
      return await router.maxJobSize(Date.now() + this.#connectTimeoutMs);
    } catch (error) {
      throw toAdminError(error, router.names.join(','));
    }
  }

  /**
   * Puts one job in the standard envelope into `input.tube`. With several servers (and no `server`
   * option) the put is spread as a producer's are: round-robin, past a server that is down, draining or
   * full, and moved only when it certainly was not inserted (see the README's "Several servers").
   * Everything is checked first: `INVALID_TUBE`, `INVALID_FUNC_NAME`, `INVALID_OPTION`,
   * `INVALID_KWARGS`, `JOB_TOO_BIG`, then the `checkKwargs` option.
   */
  async put(input: PutInput): Promise<PutResult> {
    const router = this.#putRouter();
    if (router === undefined) return putJob(this.#first, input, this.#checkKwargs, this.#formatId);
    return putRouted(router, input, this.#checkKwargs, Date.now() + this.#connectTimeoutMs);
  }

  /**
   * Kicks buried jobs (never delayed ones) of `tube`, or of every tube when undefined, up to `bound` per
   * tube over all the servers, shared between them in proportion to each one's buried count.
   */
  async kick(tube: string | undefined, bound?: number): Promise<KickResult> {
    return kickTubes(this.#servers, tube, bound, this.several);
  }

  /** Kicks one buried or delayed job; `JOB_NOT_FOUND`, or `WRONG_STATE` for a ready or reserved one. */
  async kickJob(id: string): Promise<KickJobResult> {
    const located = this.#locate(id);
    const result = await kickOne(located.server, located.id, String(id).trim());
    return { id: this.#formatId(located.server, located.id), ...result };
  }

  /** Deletes one job in any state but reserved (`JOB_RESERVED`: only its worker can). */
  async deleteJob(id: string): Promise<DeleteJobResult> {
    const located = this.#locate(id);
    const result = await deleteOne(located.server, located.id, String(id).trim());
    return { id: this.#formatId(located.server, located.id), ...result };
  }

  /** Deletes up to `count` buried jobs of `tube` (all when undefined), oldest first; `onDeleted` after each. */
  async deleteBuried(tube: string, count?: number, onDeleted: () => void = () => undefined): Promise<DeleteBuriedResult> {
    return deleteBuriedJobs(this.#servers, tube, count, onDeleted, this.#formatId, this.several);
  }

  /** Pauses `tube`'s reserves for `seconds` (0 ends a pause); `TUBE_NOT_FOUND` when no server has it. */
  async pause(tube: string, seconds: number): Promise<PauseResult> {
    return pauseTube(this.#servers, tube, seconds, this.several);
  }

  /** Ends `tube`'s pause now. */
  async resume(tube: string): Promise<PauseResult> {
    return pauseTube(this.#servers, tube, 0, this.several);
  }

  /**
   * Puts the dead letters of `options.from` that failed in `options.tube` back into it, failure history
   * kept, others left as they were. The new job is put before the letter is deleted: a failure between
   * leaves a duplicate, never a loss.
   */
  async requeue(options: RequeueOptions & { readonly server?: string }): Promise<RequeueResult> {
    return requeueDeadLetters(this.#server(options.server), options, this.#formatId);
  }

  /**
   * Puts one dead letter back into the tube it failed in (its record says which), failure history kept;
   * `NOT_A_DEAD_LETTER` for a job without that record, `JOB_RESERVED` while a worker holds it.
   */
  async requeueJob(id: string): Promise<RequeueJobResult> {
    const located = this.#locate(id);
    return requeueOne(located.server, located.id, String(id).trim(), this.#formatId);
  }

  /** Closes every connection; later calls fail. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#servers.map((server) => server.close()), this.#router?.close()]);
  }

  /** The router of puts when they are spread (several servers, no `server` option), else undefined. */
  #putRouter(): PutRouter | undefined {
    if (this.#servers.length < 2 || this.#closed) return undefined;
    this.#router ??= new PutRouter({
      servers: this.#servers.map((server) => ({ address: server.address, name: server.name })),
      connectTimeoutMs: this.#connectTimeoutMs,
      ...(this.#connect === undefined ? {} : { connect: this.#connect }),
    });
    return this.#router;
  }

  get #first(): AdminServer {
    return this.#servers[0] as AdminServer;
  }

  /** The server named, or the only one. */
  #server(name: string | undefined): AdminServer {
    if (name === undefined) {
      if (this.#servers.length === 1) return this.#first;
      throw new InvalidInputError('AMBIGUOUS_SERVER', `give the server to scan: one of ${this.serverNames.join(', ')}`);
    }
    return pickServer(this.#servers, name);
  }

  #locate(id: string): { server: AdminServer; id: string } {
    const located = locateId(id, this.serverNames);
    return { server: this.#servers[located.server] as AdminServer, id: located.id };
  }

  /** A job id as results give it: the server's own while one server is configured, else `host:port/id`. */
  readonly #formatId = (server: AdminServer, id: string): string => (this.several ? `${server.name}/${id}` : id);
}

/** The configured server that `wanted` names (as listed, or any URL form of it); `SERVER_NOT_FOUND` otherwise. */
function pickServer<T extends { readonly name: string }>(list: readonly T[], wanted: string): T {
  let name = wanted.trim();
  try {
    name = formatAddress(parseServerUrl(name));
  } catch {
    // Not a URL: compared as it was given, and refused below.
  }
  const found = list.find((server) => server.name === name);
  if (found) return found;
  throw new NotFoundError(
    'SERVER_NOT_FOUND',
    `no configured server is called ${JSON.stringify(wanted)} (configured: ${list.map((server) => server.name).join(', ')})`,
  );
}
