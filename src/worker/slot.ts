/**
 * One slot: a connection of its own and a loop that reserves one job at a time on it. A pending reserve
 * blocks its connection, and a job can be deleted, released, buried or touched only on the connection
 * that reserved it, so concurrency means one slot per job in flight.
 *
 * Every command the slot sends has a deadline: the connection's stall watchdog drops it when commands
 * wait and the server sends nothing for `commandTimeoutMs` (past a reserve's own timeout), so a
 * server that stops answering (hung, or a proxy holding a half-open socket) costs a dropped connection
 * and one log line, never a stalled slot. When the connection is lost the slot reconnects with capped, jittered backoff,
 * watches its tubes again and goes on; the jobs it held went back to ready on the server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { ConnectionError, DeadlineSoonError } from '../beanstalk/errors.js';
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, ReservedJob } from '../beanstalk/types.js';
import { type Logger, toError } from '../logging/logger.js';
import { reconnectDelayMs } from './backoff.js';
import type { ResolvedWorkerOptions } from './options.js';
import { type JobContext, processJob } from './process-job.js';
import { Reservation } from './reservation.js';

/** How often the worker calls Slot.tick: the resolution of the TTR probe. */
export const TICK_MS = 50;

/**
 * How long a slot waits after a reserve answered DEADLINE_SOON: the connection still holds a job in
 * its last second, and a reserve before that second is over would answer the same at once.
 */
const DEADLINE_SOON_PAUSE_MS = 1_000;

/** What a slot needs from its worker. */
export interface SlotDeps {
  readonly index: number;
  readonly options: ResolvedWorkerOptions;
  readonly address: ServerAddress;
  readonly connect: ConnectFunction;
  readonly logger: Logger;
  readonly job: JobContext;
  /** Aborts when the worker starts stopping: ends backoff sleeps at once. */
  readonly stopping: AbortSignal;
}

/** One connection, one job at a time. */
export class Slot {
  readonly #deps: SlotDeps;
  #connection: Beanstalk | undefined;
  #loop: Promise<void> | undefined;
  /** The job this slot is running, if any. */
  current: { readonly job: Reservation; readonly done: Promise<void> } | undefined;

  constructor(deps: SlotDeps) {
    this.#deps = deps;
  }

  /** Opens the connection and watches the tubes. Rejects with ConnectionError when the server is unreachable. */
  async open(): Promise<void> {
    this.#connection = await this.#openConnection();
  }

  /** Starts the reserve loop. */
  run(): void {
    this.#loop ??= this.#reserveLoop();
  }

  /** Resolves when the loop has ended (after the worker started stopping). */
  get finished(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /** Closes the connection: a pending reserve ends, and a job held here goes back to ready at once. */
  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    try {
      await connection?.quit();
    } catch (error) {
      this.#deps.logger.warn({ err: error, slot: this.#deps.index }, 'closing a connection failed');
    }
  }

  async #openConnection(): Promise<Beanstalk> {
    const { options, address, connect } = this.#deps;
    // The worker's connect adds the stall watchdog (see Worker).
    const connection = await connect(address, { connectTimeoutMs: options.connectTimeoutMs });
    try {
      // Pipelined: a worker watching many tubes starts in one round trip, not one per tube.
      const watching = options.tubes.map((tube) => connection.watch(tube));
      if (!options.tubes.includes('default')) watching.push(connection.ignore('default'));
      await Promise.all(watching);
    } catch (error) {
      await connection.quit().catch(() => undefined);
      throw error;
    }
    return connection;
  }

  async #reserveLoop(): Promise<void> {
    const { logger, stopping } = this.#deps;
    // A reserve written right behind the last job's delete (see onSettling below), on `ahead.connection`.
    let ahead: { readonly connection: Beanstalk; readonly reserve: Promise<ReservedJob | null> } | undefined;
    while (!stopping.aborted) {
      const connection = this.#connection && !this.#connection.isClosed ? this.#connection : await this.#reconnect();
      if (!connection) break;
      let job: ReservedJob | null;
      // A reserve written ahead on a connection since lost is dropped with it.
      const pipelined = ahead?.connection === connection ? ahead : undefined;
      ahead = undefined;
      // The job that reserve was written behind: it is settled (and its listeners have run) first.
      const previous = pipelined ? this.current : undefined;
      try {
        const reserving = pipelined ? pipelined.reserve : this.#reserve(connection);
        job = await reserving;
        // The two replies often arrive together. The previous job's outcome comes first, so that what its
        // listeners decide (a recycle limit that stops the worker) holds before another job starts.
        if (previous) await previous.done;
      } catch (error) {
        if (stopping.aborted) break;
        if (error instanceof DeadlineSoonError) {
          // This connection still holds a job in its last second: one this slot lost track of, since a
          // slot reserves only once its job is settled. Going round at once would spin until that
          // second is over; wait for the job's outcome, or for the second to pass.
          logger.warn({ slot: this.#deps.index }, 'reserve answered DEADLINE_SOON: a job held on this connection is near its TTR; pausing');
          const pause = sleep(DEADLINE_SOON_PAUSE_MS, undefined, { signal: stopping });
          await (this.current ? Promise.race([this.current.done, pause]) : pause).catch(() => undefined);
          continue;
        }
        if (error instanceof ConnectionError) {
          logger.warn({ err: error, slot: this.#deps.index }, 'lost the connection to beanstalkd; reconnecting');
          this.#deps.job.emit('worker:error', error);
          continue;
        }
        logger.error({ err: error, slot: this.#deps.index }, 'reserve failed');
        this.#deps.job.emit('worker:error', toError(error));
        await sleep(1_000, undefined, { signal: stopping }).catch(() => undefined);
        continue;
      }
      // A job reserved while a stop was closing the connection goes back to ready with the socket.
      if (!job || stopping.aborted) continue;
      const { tubes } = this.#deps.options;
      const reservation = new Reservation(job, connection, tubes.length === 1 ? tubes[0] : undefined);
      let wrote!: () => void;
      const written = new Promise<void>((resolve) => {
        wrote = resolve;
      });
      // Once the delete (or release, bury) is written, the next reserve follows it at once, in the same
      // synchronous step, so both leave in one write: one round trip per job instead of two, and the
      // server gets the next command without waiting for this process to finish its other work. Replies
      // come back in order, so the job is settled before the next one is handed out.
      reservation.onSettling = () => {
        if (!stopping.aborted && this.#connection === connection && !connection.isClosed) {
          const reserve = this.#reserve(connection);
          // Awaited on the next turn of the loop; this keeps a rejection in between from counting as unhandled.
          reserve.catch(() => undefined);
          ahead = { connection, reserve };
        }
        wrote();
      };
      // processJob never rejects (it gives the job back on any bug); the catch keeps that true for good.
      const done = processJob(this.#deps.job, reservation).then(
        () => this.#finished(reservation),
        (error: unknown) => {
          this.#finished(reservation);
          logger.error({ err: toError(error), jobId: reservation.id }, 'processing a job failed unexpectedly');
        },
      );
      this.current = { job: reservation, done };
      await Promise.race([done, written]);
    }
    // The last job's settling command may still be waiting for its reply.
    await this.current?.done;
  }

  /** Forgets `job` once it is settled, unless a newer job has taken its place. */
  #finished(job: Reservation): void {
    if (this.current?.job === job) this.current = undefined;
  }

  /** A reserve, bounded by the connection's stall watchdog like every other command. */
  #reserve(connection: Beanstalk): Promise<ReservedJob | null> {
    return connection.reserve(this.#deps.options.reserveTimeoutSeconds);
  }

  /** Called by the worker every {@link TICK_MS}: lets the running job start its TTR keep-alive once it has run long enough. */
  tick(now: number): void {
    this.current?.job.onTick?.(now);
  }

  /** Reconnects with capped, jittered backoff until it succeeds or the worker stops. One log line per attempt. */
  async #reconnect(): Promise<Beanstalk | undefined> {
    const { options, logger, stopping, index, address } = this.#deps;
    this.#connection = undefined;
    const server = formatAddress(address);
    for (let attempt = 1; !stopping.aborted; attempt += 1) {
      const delayMs = reconnectDelayMs(attempt, options.reconnectMinMs, options.reconnectMaxMs);
      try {
        await sleep(delayMs, undefined, { signal: stopping });
      } catch {
        return undefined;
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
          return undefined;
        }
        this.#connection = connection;
        logger.info({ slot: index, attempts: attempt, server }, 'reconnected to beanstalkd');
        this.#deps.job.emit('worker:reconnected', { slot: index, attempts: attempt });
        return connection;
      } catch (error) {
        logger.warn(
          { slot: index, attempt, server, reason: toError(error).message },
          `reconnect attempt ${attempt} to ${server} failed; trying again`,
        );
      } finally {
        if (onStop) stopping.removeEventListener('abort', onStop);
      }
    }
    return undefined;
  }
}
