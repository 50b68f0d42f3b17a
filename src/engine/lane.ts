/**
 * A lane: the connections of one server that watch the same tubes, and what each has in flight. A job
 * reserved on a lane of one tube comes from that tube (the server's fact, not the body's). A connection
 * may hold many reserved jobs, and a job can be deleted, released, buried or touched only on the
 * connection that reserved it; a waiting reserve blocks its connection, so it is written only on a
 * connection that holds nothing and has nothing in flight ({@link LaneConnection.idle}).
 *
 * The lane of the waiting reserve opens its first connection at start; a tube's lane opens its first
 * when the engine first asks it for jobs, more when a waiting reserve needs an idle one, and reconnects
 * with capped, jittered backoff when it has lost them all.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, ReservedJob } from '../beanstalk/types.js';
import { type Logger, toError } from '../logging/logger.js';
import { reconnectDelayMs } from '../worker/backoff.js';
import type { Reservation } from '../worker/reservation.js';

/** One connection of a lane. */
export class LaneConnection {
  readonly connection: Beanstalk;
  /** Reservations handed out from this connection and not yet ended: only here can they be settled. */
  readonly jobs = new Set<Reservation>();
  /** Called when a job ends, while a stop waits for this connection's jobs (see ReservationEngine). */
  onJobEnded: (() => void) | undefined;
  /** `reserve-with-timeout 0` written and not answered yet. */
  asking = 0;
  /** A waiting reserve is outstanding: nothing may be written behind it for a job (there is none here). */
  blocking = false;
  /** Set once its loss has been reported. */
  lost = false;
  /** The engine's handlers of a `reserve-with-timeout 0` reply here, made on first use. */
  onAnswer: readonly [(job: ReservedJob | null) => void, (error: unknown) => void] | undefined;

  constructor(connection: Beanstalk) {
    this.connection = connection;
  }

  /** True when every job held here is being settled and nothing else is in flight: idle in a round trip. */
  get settlingOnly(): boolean {
    if (this.asking > 0 || this.blocking || this.connection.isClosed) return false;
    for (const job of this.jobs) if (job.state === 'running') return false;
    return true;
  }

  /** True when a waiting reserve may be written here: no job to settle or touch can queue behind it. */
  get idle(): boolean {
    return this.jobs.size === 0 && this.asking === 0 && !this.blocking && !this.connection.isClosed;
  }
}

/** What a lane needs from its engine. */
export interface LaneDeps {
  readonly address: ServerAddress;
  readonly connect: ConnectFunction;
  readonly connectTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly logger: Logger;
  /** Aborts when the worker starts stopping: ends backoff sleeps and connects at once. */
  readonly stopping: AbortSignal;
  /** A connection was added (opened or reconnected): there may be work for it. */
  readonly onConnection: () => void;
  /** A lane that had lost every connection has one again. */
  readonly onReconnected: (lane: number, attempts: number) => void;
}

/** The connections of one server watching `tubes`. */
export class Lane {
  readonly index: number;
  readonly tubes: readonly string[];
  /** The tube every job reserved here is in; undefined on a lane watching several tubes. */
  readonly tube: string | undefined;
  readonly connections: LaneConnection[] = [];
  /** The last reserve here found no job: ask again only once something says there may be one. */
  empty = false;
  readonly #deps: LaneDeps;
  #opening = false;
  /** A connection has been open here: losing them all after that is a reconnect, with backoff. */
  #everOpened = false;
  /** The first attempt at the lane's first connection is under way (see {@link connecting}). */
  #connecting = false;

  constructor(deps: LaneDeps, index: number, tubes: readonly string[]) {
    this.#deps = deps;
    this.index = index;
    this.tubes = tubes;
    this.tube = tubes.length === 1 ? tubes[0] : undefined;
  }

  /**
   * Opens the first connection. Rejects with ConnectionError when the server is unreachable. Only the
   * lane the waiting reserve goes on is opened this way; the others open their first connection when
   * first asked for one ({@link forAsking}), so that a worker's start-up does not grow with its tubes.
   */
  async open(): Promise<void> {
    this.connections.push(new LaneConnection(await this.#openConnection()));
    this.#everOpened = true;
  }

  /**
   * True while the lane's first connection is being opened, on its first attempt: the engine holds its
   * wait back meanwhile, since the lane will ask within a round trip (a failed attempt ends this, so a
   * lane that cannot connect never holds the wait back).
   */
  get connecting(): boolean {
    return this.#connecting;
  }

  /**
   * A connection to pipeline `reserve-with-timeout 0` on: open and not blocked, preferring the one that
   * already holds the most, so that the others stay idle for a waiting reserve. Undefined while the
   * lane is reconnecting.
   */
  forAsking(): LaneConnection | undefined {
    let best: LaneConnection | undefined;
    const { connections } = this;
    for (let i = 0; i < connections.length; i += 1) {
      const lc = connections[i] as LaneConnection;
      if (lc.blocking || lc.connection.isClosed) continue;
      if (best === undefined || lc.jobs.size + lc.asking > best.jobs.size + best.asking) best = lc;
    }
    if (best === undefined) this.#grow();
    return best;
  }

  /**
   * An idle connection for a waiting reserve. When there is none, and none is about to be (every job it
   * holds being settled, their replies a round trip away: the engine is called again when they end),
   * one more is opened, and the engine is called again once it is open.
   */
  forWaiting(): LaneConnection | undefined {
    let soon = false;
    for (const lc of this.connections) {
      if (lc.idle) return lc;
      if (!soon && lc.settlingOnly) soon = true;
    }
    if (!soon) this.#grow();
    return undefined;
  }

  /**
   * Closes idle connections past one. A wait needs an idle connection and, while every connection holds
   * a running job, one more is opened for it; after bursts of long jobs that leaves up to one per place.
   * Called while the server is being waited on, so one spare is enough for the next wait.
   */
  trimIdle(): void {
    let kept = false;
    for (let i = this.connections.length - 1; i >= 0; i -= 1) {
      const lc = this.connections[i] as LaneConnection;
      if (!lc.idle) continue;
      if (!kept) {
        kept = true;
        continue;
      }
      this.connections.splice(i, 1);
      // Idle: nothing in flight to lose by not waiting for the server's end.
      void lc.connection.destroy();
    }
  }

  /** Forgets a connection that was lost or closed; reconnects if it was the last. */
  remove(lc: LaneConnection): void {
    const at = this.connections.indexOf(lc);
    if (at !== -1) this.connections.splice(at, 1);
    this.reviveIfLost();
  }

  /**
   * Reconnects if every connection is gone. An idle lane (its tube empty, nothing in flight) does not
   * notice a loss by itself; the engine calls this on every lane when any connection is lost, since a
   * server that went away took them all.
   */
  reviveIfLost(): void {
    // A lane never opened has lost nothing: it opens when first asked.
    if (!this.#everOpened) return;
    if (!this.#deps.stopping.aborted && !this.connections.some((lc) => !lc.connection.isClosed)) this.#grow();
  }

  /**
   * Closes every connection: jobs still held on them go back to ready at once. An idle connection has
   * nothing in flight, so its socket is closed without waiting for the server's end (a stopped server
   * would keep `quit` waiting); one with commands in flight is quit, so that their replies come first.
   */
  async close(): Promise<void> {
    const all = this.connections.splice(0).filter((lc) => !lc.connection.isClosed);
    await Promise.all(
      all.map((lc) =>
        (lc.idle ? lc.connection.destroy() : lc.connection.quit()).catch((error: unknown) =>
          this.#deps.logger.warn({ err: error, lane: this.index }, 'closing a connection failed'),
        ),
      ),
    );
  }

  /**
   * Opens one more connection in the background, unless one is being opened. The first attempt is
   * immediate while the lane still has a connection (a spare for a waiting reserve); after a loss of
   * them all, every attempt waits its backoff first, as the server may be restarting.
   */
  #grow(): void {
    if (this.#opening || this.#deps.stopping.aborted) return;
    // A connection lost while it held jobs (noticed by a settling command, not a reserve) is forgotten
    // here, once its jobs have ended.
    for (let i = this.connections.length - 1; i >= 0; i -= 1) {
      const lc = this.connections[i] as LaneConnection;
      if (lc.connection.isClosed && lc.jobs.size === 0) this.connections.splice(i, 1);
    }
    this.#opening = true;
    // A lane's first connection is not a reconnect: no backoff, and nothing to say.
    const first = !this.#everOpened;
    this.#connecting = first;
    const reconnecting = !first && !this.connections.some((lc) => !lc.connection.isClosed);
    const open = (): void => {
      void this.#openWithBackoff(reconnecting).finally(() => {
        this.#opening = false;
        this.#connecting = false;
      });
    };
    // A first connection is opened on the next turn of the event loop, so that the engine's first pump
    // writes the wait before a hundred tubes' connects (each some synchronous work) have been set off.
    if (first) setImmediate(open);
    else open();
  }

  async #openWithBackoff(reconnecting: boolean): Promise<void> {
    const { reconnectMinMs, reconnectMaxMs, logger, stopping, address } = this.#deps;
    const server = formatAddress(address);
    for (let attempt = 1; !stopping.aborted; attempt += 1) {
      if (reconnecting || attempt > 1) {
        try {
          await sleep(reconnectDelayMs(attempt, reconnectMinMs, reconnectMaxMs), undefined, { signal: stopping });
        } catch {
          return;
        }
      }
      const opening = this.#openConnection();
      // A stop must not wait out a connect to a server that does not answer (up to connectTimeoutMs).
      // One listener per attempt, removed when the attempt ends: a long outage must not pile them up.
      let onStop: (() => void) | undefined;
      const stopped = new Promise<undefined>((resolve) => {
        onStop = () => resolve(undefined);
        stopping.addEventListener('abort', onStop, { once: true });
      });
      try {
        const connection = await Promise.race([opening, stopped]);
        if (!connection || stopping.aborted) {
          void opening.then(
            (late) => late.quit(),
            () => undefined,
          );
          return;
        }
        this.connections.push(new LaneConnection(connection));
        this.#everOpened = true;
        if (reconnecting) {
          logger.info({ lane: this.index, attempts: attempt, server }, 'reconnected to beanstalkd');
          this.#deps.onReconnected(this.index, attempt);
        }
        this.#deps.onConnection();
        return;
      } catch (error) {
        this.#connecting = false;
        logger.warn(
          { lane: this.index, attempt, server, reason: toError(error).message },
          `reconnect attempt ${attempt} to ${server} failed; trying again`,
        );
      } finally {
        if (onStop) stopping.removeEventListener('abort', onStop);
      }
    }
  }

  /** Connects and watches the lane's tubes only (ignoring `default` unless it is one of them). */
  async #openConnection(): Promise<Beanstalk> {
    const { address, connect, connectTimeoutMs } = this.#deps;
    const connection = await connect(address, { connectTimeoutMs });
    try {
      // Pipelined: a lane of many tubes starts in one round trip, not one per tube.
      const watching = this.tubes.map((tube) => connection.watch(tube));
      if (!this.tubes.includes('default')) watching.push(connection.ignore('default'));
      await Promise.all(watching);
    } catch (error) {
      await connection.quit().catch(() => undefined);
      throw error;
    }
    return connection;
  }
}
