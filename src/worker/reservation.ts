/**
 * One reserved job and its one owner. A Reservation holds the job, the connection that reserved it and
 * an explicit state, and it is the only code that ends the reservation: delete, release and bury go
 * through {@link Reservation.settle}, a stop goes through {@link Reservation.giveBack}, and a connection
 * that can no longer be trusted through {@link Reservation.drop}. Each happens at most once, so "exactly
 * one of delete, release or bury" holds by construction rather than by convention.
 */
import { performance } from 'node:perf_hooks';
import { ConnectionError, NotFoundError } from '../beanstalk/errors.js';
import type { Beanstalk, ReservedJob } from '../beanstalk/types.js';
import type { JobEvent } from './events.js';
import { JobAbort } from './job-abort.js';
import type { RunPlaces } from './rate-limit.js';

/**
 * Where a reservation is:
 * - `running`: reserved, nothing sent yet that ends it;
 * - `settling`: its delete, release or bury is on the wire;
 * - `settled`: the server answered that command;
 * - `given-back`: it went back to the server without a command (a stop, or a dropped connection).
 */
export type ReservationState = 'running' | 'settling' | 'settled' | 'given-back';

/** How {@link Reservation.settle} ended. */
export type SettleResult =
  /** The server carried the command out. */
  | 'done'
  /** NOT_FOUND: the job is no longer ours (its TTR ran out and beanstalkd gave it to someone else). */
  | 'not-found'
  /** The connection was lost: beanstalkd puts the job back to ready. */
  | 'connection-lost'
  /** Any other failure of the command; the job is given back by dropping the connection. */
  | 'failed'
  /** Nothing was sent: the reservation had already been settled or given back. */
  | 'skipped';

/** A reserved job, owned by the runner that was handed it. */
export class Reservation {
  /** The server's id of the job: what every command sends. */
  readonly id: string;
  /** The id events, logs and records give: qualified (`host:port/id`) with several servers. */
  readonly jobId: string;
  readonly body: Buffer;
  readonly connection: Beanstalk;
  /** performance.now() when the reserve answered: the job's TTR counts from here. */
  readonly reservedAt: number;
  readonly abort = new JobAbort();
  /** The job's tube and task, filled in once known. */
  event: JobEvent;
  /**
   * When the server last reset the job's TTR (the reserve, then each acknowledged touch), in
   * performance.now() time: a run or a keep-alive later than the TTR after it is an overrun.
   */
  lastResetAt: number;
  /** The job's TTR in milliseconds, once read (stats-job); undefined until then. */
  ttrMs: number | undefined;
  /** Called by the worker's tick while the job runs (the TTR probe). */
  ticker: { tick(now: number): void } | undefined;
  /**
   * Called once the settling command is written: the runner frees the job's place at once, so the
   * engine's next reserve leaves in the same write as this command.
   */
  onSettling: ((reservation: Reservation) => void) | undefined;
  /**
   * The runner's own bookkeeping of the job's place (see Worker): kept here to spare a closure per job.
   * `waiting`: the job waits for its task's rate limit and has given its place back (./rate-limit.ts).
   */
  runner: 'running' | 'waiting' | 'settling' | 'ended' = 'running';
  /** The runner holding the job, for a job that waits for its rate limit (./rate-limit.ts). */
  places: RunPlaces | undefined;
  /** Called once by {@link Reservation.end}: the engine stops counting the job against its connection. */
  onEnd: (() => void) | undefined;
  #ended = false;
  #state: ReservationState = 'running';
  /** Set once an overrun has been reported, so it is reported once. */
  overrunReported = false;

  /** @param tube - The tube the job was reserved from: the lane's, never the body's. */
  /**
   * `publicId` is the id events and logs give: `host:port/id` with several servers (the engine makes
   * it), else the server's own id. Commands always use {@link Reservation.id}.
   */
  constructor(job: ReservedJob, connection: Beanstalk, tube: string, publicId: string = job.id) {
    this.id = job.id;
    this.jobId = publicId;
    this.body = job.body;
    this.connection = connection;
    this.reservedAt = performance.now();
    this.lastResetAt = this.reservedAt;
    this.event = { jobId: publicId, tube, task: undefined };
  }

  /** Another job of the same server (a failure record's copy) as events give ids: qualified like this one. */
  publicIdOf(id: string): string {
    return this.jobId === this.id ? id : `${this.jobId.slice(0, this.jobId.length - this.id.length)}${id}`;
  }

  /** The tube the job was reserved from. */
  get tube(): string {
    return this.event.tube as string;
  }

  /** The owner is done with the job (settled, given back or dropped). Once; later calls do nothing. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd?.();
  }

  /** Where the reservation is. */
  get state(): ReservationState {
    return this.#state;
  }

  /** True once the reservation went back to the server without a command. */
  get wasGivenBack(): boolean {
    return this.#state === 'given-back';
  }

  /**
   * Sends the command that ends the reservation (once): `run` writes it synchronously, the engine may
   * pipeline its next reserve behind it, and the reply decides the result. Never throws.
   */
  async settle(run: () => Promise<void>): Promise<{ result: SettleResult; error?: unknown }> {
    if (this.#state !== 'running') return { result: 'skipped' };
    this.#state = 'settling';
    let written: Promise<void>;
    try {
      written = run();
    } catch (error) {
      // A command that could not even be written (a bad argument): nothing is on the wire.
      this.#state = 'running';
      await this.drop();
      return { result: 'failed', error };
    }
    this.onSettling?.(this);
    try {
      await written;
      this.#state = 'settled';
      return { result: 'done' };
    } catch (error) {
      if (error instanceof NotFoundError) {
        this.#state = 'settled';
        return { result: 'not-found', error };
      }
      this.#state = 'given-back';
      if (error instanceof ConnectionError) return { result: 'connection-lost', error };
      // Any other reply leaves the job reserved here: dropping the connection gives it back at once
      // rather than after its TTR.
      await this.connection.quit().catch(() => undefined);
      return { result: 'failed', error };
    }
  }

  /**
   * Marks the job as given back without a command, aborting its signal with `reason`: the caller then
   * closes the connection, and beanstalkd puts the job back to ready at once, its priority kept and no
   * release counted. False when its settling command is already on the wire.
   */
  giveBack(reason: Error): boolean {
    if (this.#state !== 'running') return false;
    this.#state = 'given-back';
    this.abort.abort(reason);
    return true;
  }

  /**
   * Gives the job back by dropping its connection. A connection holds many jobs: every job reserved on
   * it goes back to ready with it (their settling commands then fail as `connection-lost`), which is why
   * only a connection that can no longer be trusted is dropped.
   */
  async drop(): Promise<void> {
    if (this.#state === 'running') this.#state = 'given-back';
    await this.connection.quit().catch(() => undefined);
  }
}
