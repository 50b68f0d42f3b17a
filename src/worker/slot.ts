/**
 * One slot: a connection of its own and a loop that reserves one job at a time on it. A pending reserve
 * blocks its connection, and a job can be deleted, released, buried or touched only on the connection
 * that reserved it, so concurrency means one slot per job in flight.
 *
 * When the connection is lost the slot reconnects with capped, jittered backoff, watches its tubes
 * again and goes on; the jobs it held went back to ready on the server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { ConnectionError, DeadlineSoonError } from '../beanstalk/errors.js';
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, ReservedJob } from '../beanstalk/types.js';
import { type Logger, toError } from '../logging/logger.js';
import { reconnectDelayMs } from './backoff.js';
import { JobAbort } from './job-abort.js';
import type { ResolvedWorkerOptions } from './options.js';
import { type InFlightJob, type JobContext, processJob } from './process-job.js';

/** A reserve that has not answered this long after its timeout is taken for a dead (half-open) connection. */
const RESERVE_GRACE_MS = 5_000;

/** How often the worker calls Slot.tick: the resolution of the reserve deadline and the TTR probe. */
export const TICK_MS = 50;

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
  /** When the pending reserve is taken for lost (performance.now() time), and on which connection. */
  #reserveDeadline: { readonly at: number; readonly connection: Beanstalk } | undefined;
  /** The job this slot is running, if any. */
  current: { readonly job: InFlightJob; readonly done: Promise<void> } | undefined;

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
    const connection = await connect(address, { connectTimeoutMs: options.connectTimeoutMs });
    try {
      for (const tube of options.tubes) await connection.watch(tube);
      if (!options.tubes.includes('default')) await connection.ignore('default');
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
        // One job at a time: this connection holds no other reservation, so just go round again.
        if (error instanceof DeadlineSoonError) continue;
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
      const inFlight: InFlightJob = { id: job.id, released: false, abort: new JobAbort() };
      let wrote!: () => void;
      const written = new Promise<void>((resolve) => {
        wrote = resolve;
      });
      // Once the delete (or release, bury) is written, the next reserve follows it at once, in the same
      // synchronous step, so both leave in one write: one round trip per job instead of two, and the
      // server gets the next command without waiting for this process to finish its other work. Replies
      // come back in order, so the job is settled before the next one is handed out.
      inFlight.onSettling = () => {
        if (!stopping.aborted && this.#connection === connection && !connection.isClosed) {
          const reserve = this.#reserve(connection);
          // Awaited on the next turn of the loop; this keeps a rejection in between from counting as unhandled.
          reserve.catch(() => undefined);
          ahead = { connection, reserve };
        }
        wrote();
      };
      // processJob handles its own failures; the catch is a last guard so that a bug there can never
      // become an unhandled rejection.
      const done = processJob(this.#deps.job, connection, job, inFlight).then(
        () => this.#finished(inFlight),
        (error: unknown) => {
          this.#finished(inFlight);
          logger.error({ err: toError(error), jobId: inFlight.id }, 'processing a job failed unexpectedly');
          this.#deps.job.emit('worker:error', toError(error));
        },
      );
      this.current = { job: inFlight, done };
      await Promise.race([done, written]);
    }
    // The last job's settling command may still be waiting for its reply.
    await this.current?.done;
  }

  /** Forgets `job` once it is settled, unless a newer job has taken its place. */
  #finished(job: InFlightJob): void {
    if (this.current?.job === job) this.current = undefined;
  }

  /** A reserve with a deadline: a half-open connection would otherwise leave it pending for minutes. */
  #reserve(connection: Beanstalk): Promise<ReservedJob | null> {
    const { reserveTimeoutSeconds } = this.#deps.options;
    // Checked by tick(), not by a timer per reserve: two timers per job were a measurable share of a
    // short job's cost.
    const deadline = { at: performance.now() + reserveTimeoutSeconds * 1000 + RESERVE_GRACE_MS, connection };
    this.#reserveDeadline = deadline;
    const clear = (): void => {
      if (this.#reserveDeadline === deadline) this.#reserveDeadline = undefined;
    };
    // Returned as is, not awaited in an async function: the job reaches the loop one microtask sooner.
    const reserving = connection.reserve(reserveTimeoutSeconds);
    reserving.then(clear, clear);
    return reserving;
  }

  /**
   * Called by the worker every {@link TICK_MS}: drops a connection whose reserve outlived its deadline,
   * and lets the running job start its TTR keep-alive once it has run long enough.
   */
  tick(now: number): void {
    const deadline = this.#reserveDeadline;
    if (deadline !== undefined && now >= deadline.at) {
      this.#reserveDeadline = undefined;
      this.#deps.logger.warn({ slot: this.#deps.index }, 'reserve got no answer in time; dropping the connection');
      void deadline.connection.quit();
    }
    this.current?.job.onTick?.(now);
  }

  /** Reconnects with capped, jittered backoff until it succeeds or the worker stops. */
  async #reconnect(): Promise<Beanstalk | undefined> {
    const { options, logger, stopping, index, address } = this.#deps;
    this.#connection = undefined;
    for (let attempt = 1; !stopping.aborted; attempt += 1) {
      const delayMs = reconnectDelayMs(attempt, options.reconnectMinMs, options.reconnectMaxMs);
      logger.warn({ slot: index, attempt, delayMs, server: formatAddress(address) }, 'reconnecting to beanstalkd');
      try {
        await sleep(delayMs, undefined, { signal: stopping });
      } catch {
        return undefined;
      }
      try {
        // A stop must not wait out a connect to a server that does not answer (up to connectTimeoutMs).
        const opening = this.#openConnection();
        const aborted = new Promise<undefined>((resolve) => {
          if (stopping.aborted) resolve(undefined);
          else stopping.addEventListener('abort', () => resolve(undefined), { once: true });
        });
        const connection = await Promise.race([opening, aborted]);
        if (!connection || stopping.aborted) {
          void opening.then(
            (late) => late.quit(),
            () => undefined,
          );
          return undefined;
        }
        this.#connection = connection;
        logger.info({ slot: index, attempts: attempt }, 'reconnected to beanstalkd');
        this.#deps.job.emit('worker:reconnected', { slot: index, attempts: attempt });
        return connection;
      } catch (error) {
        logger.warn({ slot: index, attempt, err: error }, 'reconnect failed');
      }
    }
    return undefined;
  }
}
