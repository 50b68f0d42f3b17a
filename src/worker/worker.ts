/**
 * The worker loop: reserve, run, end the reservation, again, until stopped.
 *
 * States: idle -> starting -> running -> stopping -> stopped. A Worker runs once; make a new one to run
 * again. Signal handling belongs to the CLI, not here.
 */
import { formatAddress, resolveServerAddress, type ServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import { ConnectionError, DeadlineSoonError } from '../beanstalk/errors.js';
import type { Beanstalk, ReservedJob } from '../beanstalk/types.js';
import { createLogger, type Logger, toError } from '../logging/logger.js';
import { SafeEmitter, type StopResult, type WorkerEvents } from './events.js';
import { type ResolvedWorkerOptions, validateWorkerOptions, type WorkerOptions } from './options.js';
import { type InFlightJob, type JobContext, processJob } from './process-job.js';

/** Where a Worker is in its life. */
export type WorkerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Options of {@link Worker.stop}. */
export interface StopOptions {
  /**
   * Give the running job back to beanstalkd at once (ready again, no TTR wait) instead of waiting for
   * it. Calling `stop({ force: true })` during a graceful stop escalates it.
   * @defaultValue false
   */
  readonly force?: boolean;
}

/** Reserves jobs from the given tubes and runs the registered task each one names. */
export class Worker extends SafeEmitter<WorkerEvents> {
  readonly address: ServerAddress;
  readonly #options: ResolvedWorkerOptions;
  readonly #connect: NonNullable<WorkerOptions['connect']>;
  readonly #logger: Logger;
  #state: WorkerState = 'idle';
  #connection: Beanstalk | undefined;
  #loop: Promise<void> | undefined;
  #current: { job: InFlightJob; done: Promise<void> } | undefined;
  #stopping: Promise<StopResult> | undefined;
  #forceStop: (() => void) | undefined;
  readonly #forced: Promise<void>;

  constructor(options: WorkerOptions) {
    super();
    this.#options = validateWorkerOptions(options);
    this.address = resolveServerAddress(options.url);
    this.#connect = options.connect ?? BeanstalkConnection.connect;
    this.#logger = options.logger ?? createLogger();
    this.#forced = new Promise((resolve) => {
      this.#forceStop = resolve;
    });
  }

  /** The current state. */
  get state(): WorkerState {
    return this.#state;
  }

  /** The tubes this worker watches. */
  get tubes(): readonly string[] {
    return this.#options.tubes;
  }

  /**
   * Connects, watches the tubes (and ignores `default` unless it is one of them), and starts the loop.
   * Resolves once jobs are being reserved; rejects with ConnectionError when the server is unreachable.
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`Worker.start(): the worker is ${this.#state}; a Worker runs once, create a new one`);
    this.#state = 'starting';
    const { tubes } = this.#options;
    let connection: Beanstalk | undefined;
    try {
      connection = await this.#connect(this.address, { connectTimeoutMs: this.#options.connectTimeoutMs });
      for (const tube of tubes) await connection.watch(tube);
      if (!tubes.includes('default')) await connection.ignore('default');
    } catch (error) {
      await connection?.quit().catch(() => undefined);
      this.#state = 'stopped';
      throw error;
    }
    this.#connection = connection;
    if (this.#stopping) {
      // stop() was called while we were connecting.
      await connection.quit();
      return;
    }
    this.#state = 'running';
    this.#logger.info({ tubes, server: formatAddress(this.address), maxKicks: this.#options.maxKicks }, 'worker started');
    this.#loop = this.#run(connection);
  }

  /**
   * Stops the worker: no new reservations, the running job gets up to `graceMs` to finish (then it is
   * given back to beanstalkd), and the connection is closed. Idempotent: every call returns the same
   * promise. `{ force: true }` gives the running job back at once.
   */
  stop(options: StopOptions = {}): Promise<StopResult> {
    this.#stopping ??= this.#finishing();
    if (options.force) this.#forceStop?.();
    return this.#stopping;
  }

  protected override onListenerError(error: unknown, event: string): void {
    this.#logger.error({ err: toError(error), event }, 'a worker event listener threw; ignored');
  }

  async #run(connection: Beanstalk): Promise<void> {
    const context: JobContext = {
      connection,
      logger: this.#logger,
      maxKicks: this.#options.maxKicks,
      watchedTubes: new Set(this.#options.tubes),
      emit: (event, ...args) => this.emitSafely(event, ...args),
    };
    while (this.#state === 'running') {
      let job: ReservedJob | null;
      try {
        job = await connection.reserve(this.#options.reserveTimeoutSeconds);
      } catch (error) {
        if (this.#state !== 'running') break;
        // One job at a time means this connection holds no other reservation; go round again.
        if (error instanceof DeadlineSoonError) continue;
        if (error instanceof ConnectionError) {
          this.#logger.error({ err: error }, 'lost the connection to beanstalkd; the worker stops');
          this.emitSafely('worker:error', error);
          this.#stopping ??= this.#finishing(error);
          break;
        }
        this.#logger.error({ err: error }, 'reserve failed');
        this.emitSafely('worker:error', toError(error));
        continue;
      }
      // A job reserved while a stop was closing the connection goes back to ready with the socket.
      if (!job || this.#state !== 'running') continue;
      const inFlight: InFlightJob = { id: job.id, released: false };
      // processJob handles its own failures; the catch is a last guard so that a bug there can never
      // turn into an unhandled rejection that kills the process.
      const done = processJob(context, job, inFlight).catch((error: unknown) => {
        this.#logger.error({ err: toError(error), jobId: job.id }, 'processing a job failed unexpectedly');
        this.emitSafely('worker:error', toError(error));
      });
      this.#current = { job: inFlight, done };
      await done;
      this.#current = undefined;
    }
  }

  async #finishing(fatal?: Error): Promise<StopResult> {
    const wasStarted = this.#state === 'running' || this.#state === 'starting';
    this.#state = 'stopping';
    const released: string[] = [];
    const current = this.#current;
    if (current) {
      this.#logger.info({ jobId: current.job.id, graceMs: this.#options.graceMs }, 'stopping: waiting for the running job');
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        current.done.then(() => 'done' as const),
        new Promise<'grace'>((resolve) => {
          timer = setTimeout(() => resolve('grace'), this.#options.graceMs);
        }),
        this.#forced.then(() => 'forced' as const),
      ]);
      clearTimeout(timer);
      if (outcome !== 'done') {
        // Closing the socket makes beanstalkd put the job back to ready at once, with its priority kept
        // and without counting a release (which retries are counted from).
        current.job.released = true;
        released.push(current.job.id);
        this.#logger.warn({ jobId: current.job.id, why: outcome }, 'stopping: giving the running job back to beanstalkd');
        this.emitSafely('job:released', {
          jobId: current.job.id,
          tube: current.job.event?.tube,
          task: current.job.event?.task,
          reason: 'stop',
        });
      }
    }
    // Closing also ends a pending reserve at once; a job it may just have reserved goes back to ready.
    try {
      await this.#connection?.quit();
    } catch (error) {
      this.#logger.warn({ err: error }, 'closing the connection failed');
    }
    // The loop ends by itself once its reserve fails on the closed connection. When a job was given back,
    // the loop is still awaiting that abandoned task, which may never settle: do not wait for it.
    if (released.length === 0) {
      try {
        await this.#loop;
      } catch (error) {
        this.#logger.error({ err: error }, 'the worker loop ended with an error');
      }
    }
    this.#state = 'stopped';
    const result: StopResult = fatal
      ? { graceful: false, releasedJobIds: released, error: fatal }
      : { graceful: released.length === 0, releasedJobIds: released };
    if (wasStarted) this.#logger.info({ graceful: result.graceful, released }, 'worker stopped');
    this.emitSafely('worker:stopped', result);
    return result;
  }
}
