/**
 * The runner: the worker's concurrency budget, and the code that runs each job the job source hands
 * over. It is the source's {@link JobSink}: its capacity is the free places, and a place frees as soon as
 * the job's settling command is written, so that the source's next reserve leaves in the same write.
 */
import type { JobSink, JobSource } from '../engine/job-source.js';
import { type Logger, toError } from '../logging/logger.js';
import { type JobContext, processJob } from './process-job.js';
import { giveBackWaiting, type RunPlaces } from './rate-limit.js';
import type { Reservation } from './reservation.js';

/** What a runner needs. */
export interface RunnerOptions {
  readonly concurrency: number;
  readonly source: JobSource;
  readonly job: JobContext;
  readonly logger: Logger;
  /** Aborts when the worker starts stopping: jobs handed over from then on are declined. */
  readonly stopping: AbortSignal;
}

/** Runs up to `concurrency` jobs at once. */
export class Runner implements JobSink, RunPlaces {
  readonly #options: RunnerOptions;
  /** Jobs being run, from their hand-over to their end, and the promise of that end. */
  readonly running = new Map<Reservation, Promise<void>>();
  /** Jobs handed over in this turn of the event loop, started together on the next (see accept). */
  #arrived: Reservation[] = [];
  /** Places taken: jobs handed over whose settling command is not on the wire yet. */
  #busy = 0;
  /** Jobs whose settling command is on the wire and whose run has not ended yet. */
  #settling = 0;
  /**
   * Jobs whose rate-limit turn came while every place was taken, oldest first: the next place freed is
   * theirs, not the source's. Undefined when there are none, so the success path checks only that.
   */
  #wanting: { readonly reservation: Reservation; readonly onPlace: () => void }[] | undefined;

  constructor(options: RunnerOptions) {
    this.#options = options;
    // Jobs waiting for a rate limit never ran: a stop gives them back at once, not after the grace period.
    options.stopping.addEventListener('abort', () => giveBackWaiting(this, options.logger), { once: true });
  }

  /** The most jobs that run at once. */
  get concurrency(): number {
    return this.#options.concurrency;
  }

  /** A job waiting for its rate limit gives its place back (see ./rate-limit.ts). */
  leave(reservation: Reservation): void {
    if (reservation.runner !== 'running') return;
    reservation.runner = 'waiting';
    this.#placeFreed();
  }

  /** A job whose rate-limit turn came takes a place: now when one is free, else the next one freed. */
  rejoin(reservation: Reservation, onPlace: () => void): boolean {
    if (this.#wanting === undefined && this.#busy < this.#options.concurrency) {
      this.#busy += 1;
      reservation.runner = 'running';
      return true;
    }
    this.#wanting ??= [];
    this.#wanting.push({ reservation, onPlace });
    return false;
  }

  /** Withdraws a job's wait for a place (it was given back meanwhile). */
  cancelRejoin(reservation: Reservation): void {
    const wanting = this.#wanting?.filter((each) => each.reservation !== reservation);
    this.#wanting = wanting === undefined || wanting.length === 0 ? undefined : wanting;
  }

  /** A waiting job that kept its place hands it to an older one whose turn came. */
  swap(from: Reservation, to: Reservation): void {
    from.runner = 'waiting';
    to.runner = 'running';
  }

  /** Free places: the most jobs the source may reserve for this runner now. */
  get capacity(): number {
    return this.#options.concurrency - this.#busy;
  }

  /** Jobs held: running, or handed over and about to start. */
  get active(): number {
    return this.running.size + this.#arrived.length;
  }

  /**
   * A job from the source. While another job's settling command waits for its reply, jobs handed over
   * in one turn of the event loop start together on the next (one setImmediate per batch, not per job):
   * a job reserved behind the previous job's delete often arrives in the same read as that delete's
   * reply, and the previous job's outcome (and what its listeners decide, such as a recycle limit that
   * stops the worker) must come first. With nothing settling, the job starts at once.
   */
  accept(reservation: Reservation): void {
    if (this.#options.stopping.aborted) {
      this.#options.source.giveBack(reservation);
      return;
    }
    this.#busy += 1;
    if (this.#settling === 0 && this.#arrived.length === 0) {
      this.#run(reservation);
      return;
    }
    this.#arrived.push(reservation);
    if (this.#arrived.length === 1) setImmediate(this.#startArrived);
  }

  /** During a stop: the jobs handed over but not started yet go back to the source, to be given back. */
  declineArrived(): void {
    const arrived = this.#arrived;
    this.#arrived = [];
    for (const reservation of arrived) {
      this.#busy -= 1;
      this.#options.source.giveBack(reservation);
    }
  }

  readonly #startArrived = (): void => {
    const arrived = this.#arrived;
    this.#arrived = [];
    for (const reservation of arrived) this.#run(reservation);
  };

  #run(reservation: Reservation): void {
    if (this.#options.stopping.aborted) {
      this.#busy -= 1;
      this.#options.source.giveBack(reservation);
      return;
    }
    reservation.onSettling = this.#onSettling;
    reservation.places = this;
    // processJob never rejects (it gives the job back on any bug); the catch keeps that true for good.
    const done = processJob(this.#options.job, reservation).then(
      () => this.#finished(reservation),
      (error: unknown) => {
        this.#finished(reservation);
        this.#options.logger.error({ err: toError(error), jobId: reservation.jobId }, 'processing a job failed unexpectedly');
      },
    );
    this.running.set(reservation, done);
  }

  /**
   * The job's settling command is written: its place frees at once, so that the source's next reserve
   * leaves in the same write as that command (one write per job, not two). One function for every job.
   */
  readonly #onSettling = (reservation: Reservation): void => {
    if (reservation.runner !== 'running') return;
    reservation.runner = 'settling';
    this.#settling += 1;
    this.#placeFreed();
  };

  /** A place is free: a job whose rate-limit turn came takes it first, else the source may reserve. */
  #placeFreed(): void {
    this.#busy -= 1;
    const wanting = this.#wanting;
    if (wanting !== undefined) {
      const next = wanting.shift() as { reservation: Reservation; onPlace: () => void };
      if (wanting.length === 0) this.#wanting = undefined;
      this.#busy += 1;
      next.reservation.runner = 'running';
      next.onPlace();
      return;
    }
    this.#options.source.pump();
  }

  #finished(reservation: Reservation): void {
    this.running.delete(reservation);
    const was = reservation.runner;
    reservation.runner = 'ended';
    reservation.end();
    if (was === 'settling') this.#settling -= 1;
    else if (was === 'running') {
      // Ended without a settling command (given back, dropped): its place frees now.
      this.#placeFreed();
    }
  }
}
