/**
 * The runner: the worker's concurrency budget, and the code that runs each job the job source hands
 * over. It is the source's {@link JobSink}: its capacity is the free places, and a place frees as soon as
 * the job's settling command is written, so that the source's next reserve leaves in the same write.
 */
import type { JobSink, JobSource } from '../engine/job-source.js';
import { type Logger, toError } from '../logging/logger.js';
import { type JobContext, processJob } from './process-job.js';
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
export class Runner implements JobSink {
  readonly #options: RunnerOptions;
  /** Jobs being run, from their hand-over to their end, and the promise of that end. */
  readonly running = new Map<Reservation, Promise<void>>();
  /** Jobs handed over in this turn of the event loop, started together on the next (see accept). */
  #arrived: Reservation[] = [];
  /** Places taken: jobs handed over whose settling command is not on the wire yet. */
  #busy = 0;
  /** Jobs whose settling command is on the wire and whose run has not ended yet. */
  #settling = 0;

  constructor(options: RunnerOptions) {
    this.#options = options;
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
    this.#busy -= 1;
    this.#options.source.pump();
  };

  #finished(reservation: Reservation): void {
    this.running.delete(reservation);
    const was = reservation.runner;
    reservation.runner = 'ended';
    reservation.end();
    if (was === 'settling') this.#settling -= 1;
    else if (was === 'running') {
      // Ended without a settling command (given back, dropped): its place frees now.
      this.#busy -= 1;
      this.#options.source.pump();
    }
  }
}
