/**
 * The Worker: a concurrency budget and a runner over a job source (the reservation engine, see
 * ../engine/engine.ts), plus an optional auto-kicker and dead-letter tube on their own connections.
 * The worker never reserves: it says how many jobs it can take, and runs each one it is handed.
 *
 * States: idle -> starting -> running -> stopping -> stopped. A Worker runs once; make a new one to run
 * again. Signal handling belongs to the CLI, not here.
 */
import { setMaxListeners } from 'node:events';
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import { type ConnectFunction, LazyConnection } from '../beanstalk/lazy-connection.js';
import type { JobStats } from '../beanstalk/types.js';
import { ReservationEngine } from '../engine/engine.js';
import type { JobSource } from '../engine/job-source.js';
import { readFailureHistory } from '../failures/record.js';
import { createLogger, type Logger, toError } from '../logging/logger.js';
import { qualifyId, splitJobId } from '../servers/job-id.js';
import { type NamedServer, parseServerList } from '../servers/server-list.js';
import { type EngineHooks, ServerSetSource } from '../servers/server-set-source.js';
import { PUT_DEFAULTS } from '../tasks/put-options.js';
import { startAutoKick } from './auto-kick.js';
import { type DeadLetterInfo, deadLetterBody } from './dead-letter.js';
import { SafeEmitter, type StopResult, type WorkerEvents } from './events.js';
import { type ResolvedWorkerOptions, validateWorkerOptions, type WorkerOptions } from './options.js';
import type { DeadLetterResult, JobContext } from './process-job.js';
import { copyDelaySeconds, FailureRecorder } from './record-bury.js';
import { Runner } from './runner.js';
import { TaskThreadPool } from './threads/pool.js';

/** Node's default bound on an AbortSignal's listeners, kept as the margin over the lanes' own. */
const DEFAULT_ABORT_LISTENERS = 10;
/** How often the worker ticks its running jobs: the resolution of the TTR probe. */
export const TICK_MS = 50;

/** Where a Worker is in its life. */
export type WorkerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Options of {@link Worker.stop}. */
export interface StopOptions {
  /**
   * Give running jobs back to beanstalkd at once (ready again, no TTR wait), aborting their signals,
   * instead of waiting for them. Calling `stop({ force: true })` during a graceful stop escalates it.
   * @defaultValue false
   */
  readonly force?: boolean;
}

/** Reserves jobs from the given tubes and runs the registered task each one names. */
export class Worker extends SafeEmitter<WorkerEvents> {
  /** The server reserved from; the first one when there are several. */
  readonly address: ServerAddress;
  /** Every server reserved from, by name (`host:port`). */
  readonly servers: readonly string[];
  readonly #options: ResolvedWorkerOptions;
  readonly #logger: Logger;
  readonly #source: JobSource;
  readonly #runner: Runner;
  /** Per server: the connection dead letters are put on (a job's letter goes to its own server). */
  readonly #control: Map<string, LazyConnection>;
  /** Per server: auto-kick's connection. */
  readonly #kicker: Map<string, LazyConnection>;
  /** The servers' names, and whether ids are qualified with them (several servers). */
  readonly #several: boolean;
  readonly #stopping = new AbortController();
  readonly #forced = new AbortController();
  #state: WorkerState = 'idle';
  #stopped: Promise<StopResult> | undefined;
  #stopAutoKick: (() => Promise<void>)[] = [];
  #crashChecksLeft: number;
  #ticker: NodeJS.Timeout | undefined;
  #threads: TaskThreadPool | undefined;

  constructor(options: WorkerOptions) {
    super();
    this.#options = validateWorkerOptions(options);
    const servers = parseServerList(options.url);
    this.address = (servers[0] as NamedServer).address;
    this.servers = servers.map((server) => server.name);
    this.#several = servers.length > 1;
    this.#logger = options.logger ?? createLogger();
    const open: ConnectFunction = options.connect ?? BeanstalkConnection.connect;
    const { commandTimeoutMs, connectTimeoutMs } = this.#options;
    // Every connection of the worker (the engine's, control, kicker) has the stall watchdog: no command it
    // sends can wait on a silent server for longer than commandTimeoutMs.
    const connect: ConnectFunction = (address, opts) => open(address, { ...opts, stallTimeoutMs: commandTimeoutMs });
    // Dead-letter puts go on a connection that no reserve ever blocks. Auto-kick gets its own: it waits
    // for kick locks with a blocking reserve, and its `use` + `peek-buried` pairs must not have a
    // dead-letter put switch the tube in between.
    this.#control = new Map(
      servers.map((server) => [server.name, new LazyConnection({ address: server.address, connectTimeoutMs, connect })]),
    );
    this.#kicker = new Map(
      servers.map((server) => [server.name, new LazyConnection({ address: server.address, connectTimeoutMs, connect })]),
    );
    // A crashed job comes back to ready at once, at the head of its priority, so it is among the first
    // jobs reserved after the crash. Those are the ones checked: the first few after this process starts
    // (a crash of the whole process) and after checkNextJobsForCrashes (a sibling process crashed).
    this.#crashChecksLeft = this.#crashCheckBudget();
    // Bounded by the registered tasks: the success line is written only for a task that ran.
    const taskLoggers = new Map<string, Logger>();
    const job: JobContext = {
      logger: this.#logger,
      maxKicks: this.#options.maxKicks,
      maxCrashes: this.#options.maxCrashes,
      tubes: this.#options.tubes,
      autoKick: this.#options.kickPeriodSeconds !== undefined,
      redact: this.#options.redact,
      taskLogger: (tube, task) => {
        const key = `${tube}\n${task}`;
        let logger = taskLoggers.get(key);
        if (logger === undefined) {
          logger = this.#logger.child({ tube, task });
          taskLoggers.set(key, logger);
        }
        return logger;
      },
      recorder: new FailureRecorder(this.#options.failureRecords, this.#logger, copyDelaySeconds(this.#options.commandTimeoutMs)),
      deadLetter: this.#options.deadLetterTube === undefined ? undefined : (body, info) => this.#deadLetter(body, info),
      takeCrashCheck: () => {
        if (this.#crashChecksLeft <= 0) return false;
        this.#crashChecksLeft -= 1;
        return true;
      },
      // The job went back to ready while it ran; whoever reserves it next (maybe this worker) should
      // count that reservation, so a job that overruns every time is parked by maxCrashes.
      onOverrun: () => this.checkNextJobsForCrashes(),
      threads: () => this.#threads,
      // A group's callback that takes its members' results reads them on a connection of its own.
      openConnection: (address) => connect(address, { connectTimeoutMs }),
      listens: (event) => this.listenerCount(event) > 0,
      emit: (event, ...args) => this.emitSafely(event, ...args),
    };
    // Each lane listens for the stop while it connects (one per watched tube and per server, plus the
    // waits' lanes): Node's default of 10 listeners warned of a leak on a worker with ten tubes. The bound
    // still catches a real leak (listeners piling up per job or per reconnect).
    setMaxListeners((this.#options.tubes.length + 1) * servers.length + DEFAULT_ABORT_LISTENERS, this.#stopping.signal);
    const makeEngine = (server: NamedServer, hooks?: EngineHooks): ReservationEngine =>
      new ReservationEngine({
        address: server.address,
        tubes: this.#options.tubes,
        connect,
        connectTimeoutMs,
        reconnectMinMs: this.#options.reconnectMinMs,
        reconnectMaxMs: this.#options.reconnectMaxMs,
        reserveTimeoutSeconds: this.#options.reserveTimeoutSeconds,
        logger: this.#several ? this.#logger.child({ server: server.name }) : this.#logger,
        stopping: this.#stopping.signal,
        onError: (error) => this.emitSafely('worker:error', error, { server: server.name }),
        onReconnected: (lane, attempts) => this.emitSafely('worker:reconnected', { slot: lane, attempts, server: server.name }),
        ...(hooks === undefined ? {} : { onSpare: hooks.onSpare, publicId: hooks.publicId }),
      });
    // One server: its engine is the source, exactly as before. Several: one engine each, one budget.
    this.#source = this.#several
      ? new ServerSetSource({
          servers,
          makeEngine,
          logger: this.#logger,
          stopping: this.#stopping.signal,
          reconnectMinMs: this.#options.reconnectMinMs,
          reconnectMaxMs: this.#options.reconnectMaxMs,
        })
      : makeEngine(servers[0] as NamedServer);
    this.#runner = new Runner({
      concurrency: this.#options.concurrency,
      source: this.#source,
      job,
      logger: this.#logger,
      stopping: this.#stopping.signal,
    });
  }

  /** The current state. */
  get state(): WorkerState {
    return this.#state;
  }

  /**
   * Jobs held now: handed over by the engine and not yet deleted, released, buried or given back. At
   * most `concurrency`, plus jobs whose settling command is on the wire (their place is already taken
   * by the next). Cheap to read; the metrics read it at scrape time rather than counting events on every job.
   */
  get activeJobs(): number {
    return this.#runner.active;
  }

  /** The tubes this worker watches. */
  get tubes(): readonly string[] {
    return this.#options.tubes;
  }

  /**
   * Opens the engine's connections (one per watched tube, each watching only its tube, plus one watching
   * them all when there are several; see ../engine/engine.ts) and starts reserving. Rejects with
   * ConnectionError when the server is unreachable at start; after that, a lost connection is
   * reconnected, not fatal.
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`Worker.start(): the worker is ${this.#state}; a Worker runs once, create a new one`);
    this.#state = 'starting';
    const { threads } = this.#options;
    if (threads) this.#threads = await TaskThreadPool.start({ ...threads, logger: this.#logger });
    // One timer for every running job's TTR probe, instead of timers per job. Started before the source
    // opens: jobs can run before open() resolves (with several servers, one may be open while another
    // is still being waited for), and every running job must be kept alive from its first second.
    this.#ticker = setInterval(() => {
      const now = performance.now();
      for (const reservation of this.#runner.running.keys()) reservation.ticker?.tick(now);
    }, TICK_MS);
    this.#ticker.unref();
    try {
      await this.#source.open(this.#runner);
    } catch (error) {
      clearInterval(this.#ticker);
      await this.#threads?.close();
      this.#state = 'stopped';
      throw error;
    }
    if (this.#stopping.signal.aborted) {
      clearInterval(this.#ticker);
      await Promise.all([this.#source.close(), this.#threads?.close()]);
      this.#state = 'stopped';
      return;
    }
    this.#state = 'running';
    const { kickPeriodSeconds, tubes, maxKicks, concurrency, deadLetterTube } = this.#options;
    if (kickPeriodSeconds !== undefined) {
      // Each server's buried jobs are kicked on that server (a kick lock per tube per server).
      for (const [name, kicker] of this.#kicker) {
        this.#stopAutoKick.push(
          startAutoKick({
            control: kicker,
            tubes,
            periodSeconds: kickPeriodSeconds,
            logger: this.#several ? this.#logger.child({ server: name }) : this.#logger,
            maxKicks,
            deadLetter: deadLetterTube === undefined ? undefined : (body, job) => this.#deadLetter(body, this.#atBound(job, body, name)),
          }),
        );
      }
    }
    this.#logger.info(
      {
        tubes,
        server: this.#several ? this.servers : formatAddress(this.address),
        concurrency,
        threads: this.#options.threads?.size,
        maxKicks,
        kickPeriodSeconds,
        deadLetterTube,
      },
      'worker started',
    );
  }

  /**
   * Stops the worker: no new reservations; running jobs get up to `graceMs` to finish, then their
   * signals abort and they are given back to beanstalkd; connections close. Idempotent: every call
   * returns the same promise. `{ force: true }` gives running jobs back at once.
   */
  stop(options: StopOptions = {}): Promise<StopResult> {
    this.#stopped ??= this.#shutdown();
    if (options.force) this.#forced.abort();
    return this.#stopped;
  }

  /**
   * Checks the next jobs this worker reserves for earlier crashes (one `stats-job` each) before running
   * them; see `maxCrashes`. The process supervisor calls it when a sibling process dies: the jobs that
   * sibling held are back at the head of their tubes.
   */
  checkNextJobsForCrashes(): void {
    this.#crashChecksLeft = this.#crashCheckBudget();
  }

  /**
   * Enough checks to cover the jobs a crash can give back, with margin: a process holds at most
   * `concurrency` jobs (the engine never reserves more than the runner has places for), so a sibling
   * with the same concurrency gives back at most that many.
   */
  #crashCheckBudget(): number {
    return this.#options.maxCrashes === 0 ? 0 : Math.max(16, 4 * this.#options.concurrency);
  }

  protected override onListenerError(error: unknown, event: string): void {
    this.#logger.error({ err: toError(error), event }, 'a worker event listener threw; ignored');
  }

  async #shutdown(): Promise<StopResult> {
    const wasStarted = this.#state === 'running' || this.#state === 'starting';
    this.#state = 'stopping';
    this.#stopping.abort();
    // Not waiting for a kick round in flight: on a stalled server it could hold the stop for minutes.
    // Closing its connection rejects whatever it was waiting for (a held kick lock goes back with it).
    for (const stopKicking of this.#stopAutoKick) void stopKicking();
    await Promise.all([...this.#kicker.values()].map((kicker) => kicker.close().catch(() => undefined)));

    // No more reserves: the waiting one is cut off (a job it may just have reserved goes back to ready
    // with the socket), and jobs that arrive from reserves already on the wire go back at once.
    this.#runner.declineArrived();
    await this.#source.stopReserving();
    const released: string[] = [];
    const running = this.#runner.running;
    if (running.size > 0) {
      this.#logger.info({ running: running.size, graceMs: this.#options.graceMs }, 'stopping: waiting for running jobs');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#options.graceMs);
        // stop({ force: true }) may have come first: a listener added to an aborted signal never fires.
        if (this.#forced.signal.aborted) resolve();
        else this.#forced.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await Promise.race([Promise.all(running.values()), deadline]);
      clearTimeout(timer);
      const why = this.#forced.signal.aborted ? 'forced stop' : 'grace period over';
      for (const job of running.keys()) {
        // A job already being deleted, released or buried is not given back: its command is on the wire.
        // Closing the socket makes beanstalkd put the job back to ready at once, with its priority kept
        // and without counting a release (retries are counted from releases).
        if (!job.giveBack(new Error(`the worker is stopping (${why})`))) continue;
        released.push(job.jobId);
        this.#logger.warn({ jobId: job.jobId, why }, 'stopping: giving the running job back to beanstalkd');
        this.emitSafely('job:released', { ...job.event, reason: 'stop' });
      }
    }
    // Every connection closes now: the jobs given back go back to ready with them. The control
    // connection closes with them: a dead-letter put stalled on it must not hold the stop.
    await Promise.all([this.#source.close(), this.#closeControls()]);
    // The last settling commands (answered, or failed by the close) and the runs that noticed the abort.
    await Promise.all(running.values());
    clearInterval(this.#ticker);
    await Promise.all([this.#closeControls(), this.#threads?.close()]);
    this.#state = 'stopped';
    const result: StopResult = { graceful: released.length === 0, releasedJobIds: released };
    if (wasStarted) this.#logger.info({ graceful: result.graceful, released }, 'worker stopped');
    this.emitSafely('worker:stopped', result);
    return result;
  }

  /**
   * Puts a dead letter that fits the server's `max-job-size`; when not even a minimal record fits, the
   * original body as it is (`put-bare`: it fitted when it was put, and nothing of it is lost).
   */
  async #deadLetter(body: Buffer, info: DeadLetterInfo): Promise<DeadLetterResult> {
    const tube = this.#options.deadLetterTube as string;
    // The letter goes to the job's own server: its id names it when there are several.
    const server = this.#several ? splitJobId(info.jobId).server : undefined;
    const control =
      (server === undefined ? undefined : this.#control.get(server)) ?? (this.#control.values().next().value as LazyConnection);
    const connection = await control.get();
    const letter = deadLetterBody(body, info, { maxBytes: connection.maxJobSize });
    const params = { priority: PUT_DEFAULTS.priority, delaySeconds: 0, ttrSeconds: PUT_DEFAULTS.ttr };
    await connection.putInTube(tube, letter ?? body, params);
    return letter === null ? 'put-bare' : 'put';
  }

  /**
   * The record of a job found buried at the kick bound by auto-kick: its last failure, from its failure
   * record when it has one (else that failure is only in its worker's log).
   */
  #closeControls(): Promise<unknown> {
    return Promise.all([...this.#control.values()].map((control) => control.close()));
  }

  #atBound(job: JobStats, body: Buffer, server: string): DeadLetterInfo {
    const last = readFailureHistory(body)?.failures.at(-1);
    let error: Error;
    if (last) {
      error = new Error(last.message);
      error.name = last.name || 'Error';
      if (last.stack !== undefined) error.stack = last.stack;
    } else {
      error = new Error(`buried at the kick bound (${job.kicks} kick(s)); moved by auto-kick, its last failure is in the worker's log`);
    }
    return {
      error,
      tube: job.tube,
      jobId: this.#several ? qualifyId(server, job.id) : job.id,
      attempts: job.releases + 1,
      kicks: job.kicks,
      priority: job.priority,
      ttrSeconds: job.ttrSeconds,
    };
  }
}
