/**
 * The reservation engine on one server: it keeps as many reserves outstanding as the runner has free
 * places, and no more, so every job it reserves starts at once.
 *
 * - While there is work, it pipelines `reserve-with-timeout 0` on a lane per watched tube (a connection
 *   watching only that tube): each answers a job or TIMED_OUT at once, a connection holds many jobs, and
 *   a reserve leaves in the same write as the delete that freed its place. The tube of every job is the
 *   lane's, known without a `stats-job`.
 * - When every tube is empty, it waits with one blocking reserve for the whole server, written only on
 *   a connection that holds no job and has nothing else in flight: no delete, release, bury or touch can
 *   ever queue behind it. With one tube that connection is one of the tube's lane; with several it is a
 *   waiting lane that watches all of them, and the one job such a wait hands out has its tube read
 *   (one `stats-job` per wake-up, never per job). Any wake-up makes every lane worth asking again.
 */
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { ConnectionError, DeadlineSoonError } from '../beanstalk/errors.js';
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import type { ReservedJob } from '../beanstalk/types.js';
import { type Logger, toError } from '../logging/logger.js';
import { Reservation } from '../worker/reservation.js';
import type { JobSink, JobSource } from './job-source.js';
import { Lane, type LaneConnection } from './lane.js';

/**
 * How long reserving pauses after DEADLINE_SOON (a connection holds a job in the last second of its
 * TTR, and a reserve before that second is over would answer the same at once), or after a reserve
 * failed in a way that says nothing about the connection.
 */
const PAUSE_MS = 1_000;

/**
 * How often the engine checks that its server still answers. A `reserve-with-timeout 0` is answered
 * within a round trip; when pipelined reserves have waited through a whole check with no reply at all,
 * the server is taken as silent (stopped, or a half-open socket) until it answers again: its asks stop
 * counting against the other servers' places, and no more are written to it. Silence is noticed within
 * two checks (250-500 ms), long before the stall watchdog drops the connection.
 */
const SILENCE_CHECK_MS = 250;

/** What the engine needs. */
export interface EngineOptions {
  readonly address: ServerAddress;
  readonly tubes: readonly string[];
  readonly connect: ConnectFunction;
  readonly connectTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** How long one waiting reserve waits; a stop does not wait for it (its connection is closed). */
  readonly reserveTimeoutSeconds: number;
  readonly logger: Logger;
  /** Aborts when the worker starts stopping. */
  readonly stopping: AbortSignal;
  /** Reports a lost connection or a failed reserve (the worker's `worker:error`). */
  readonly onError: (error: Error) => void;
  /** A lane got a connection back after losing them all (the worker's `worker:reconnected`). */
  readonly onReconnected: (lane: number, attempts: number) => void;
  /**
   * Called when a pump leaves places unasked for (every tube empty): with several servers, the set
   * offers those places to the other servers' engines. @defaultValue none
   */
  readonly onSpare?: () => void;
  /** Makes the jobs' ids as events and logs give them (qualified with several servers). @defaultValue the id */
  readonly publicId?: (id: string) => string;
}

/** Reserves for one server; see the file comment. */
export class ReservationEngine implements JobSource {
  readonly #options: EngineOptions;
  /** One lane per watched tube: the jobs of lane i are in tube i. */
  readonly #lanes: Lane[];
  /** Where the waiting reserve goes: the only lane with one tube, else a lane watching every tube. */
  readonly #waitLane: Lane;
  #sink: JobSink | undefined;
  /** Reserves outstanding (pipelined and waiting), plus a woken job whose tube is being read. */
  #asking = 0;
  /** The connection the waiting reserve is on, if one is. */
  #waiting: LaneConnection | undefined;
  /** Where the next share of capacity starts, so that busy tubes take turns. */
  #turn = 0;
  #paused = false;
  /** Jobs that arrived during a stop, to give back. */
  readonly #declined: Reservation[] = [];
  /** Resolves stopReserving's wait once nothing is outstanding. */
  #drained: (() => void) | undefined;
  /** Reserves answered so far (or failed): the silence check compares it between two checks. */
  #answers = 0;
  #answersAtCheck = 0;
  /** Pipelined reserves were outstanding at the last check. */
  #askedAtCheck = false;
  /** Pipelined reserves have gone unanswered through a whole check; see SILENCE_CHECK_MS. */
  #silent = false;
  #silenceCheck: NodeJS.Timeout | undefined;

  constructor(options: EngineOptions) {
    this.#options = options;
    const deps = {
      address: options.address,
      connect: options.connect,
      connectTimeoutMs: options.connectTimeoutMs,
      reconnectMinMs: options.reconnectMinMs,
      reconnectMaxMs: options.reconnectMaxMs,
      logger: options.logger,
      stopping: options.stopping,
      onConnection: () => this.pump(),
      onReconnected: options.onReconnected,
    };
    this.#lanes = options.tubes.map((tube, index) => new Lane(deps, index, [tube]));
    this.#waitLane = this.#lanes.length === 1 ? (this.#lanes[0] as Lane) : new Lane(deps, this.#lanes.length, options.tubes);
    // With several tubes, nothing is known of them at start: the first pump waits on the connection that
    // watches them all, and the first job it hands out makes every lane worth asking (and opening). A
    // worker on a hundred idle tubes keeps one connection, and starts as fast as on one tube.
    if (this.#lanes.length > 1) for (const lane of this.#lanes) lane.empty = true;
  }

  /** Reserves outstanding, the waiting one included: what this engine takes of a shared budget. */
  get asking(): number {
    return this.#asking;
  }

  /** True while a waiting (blocking) reserve is outstanding. */
  get waiting(): boolean {
    return this.#waiting !== undefined;
  }

  /**
   * What this engine takes of a budget shared with other servers: its pipelined reserves, which will be
   * answered within a round trip. A waiting reserve is not counted (see ../servers/server-set-source.ts),
   * nor are the reserves of a server that has gone silent: a stopped server must not hold places that a
   * live one could use.
   */
  get sharedAsking(): number {
    return this.#silent ? 0 : this.#asking - (this.#waiting === undefined ? 0 : 1);
  }

  /** True while the server has left pipelined reserves unanswered for longer than a round trip should take. */
  get silent(): boolean {
    return this.#silent;
  }

  async open(sink: JobSink): Promise<void> {
    // Only the wait's lane: it watches every tube, so the worker can take a job from any of them once
    // it is open. Each tube's lane opens when it is first asked for jobs (see the constructor): with a
    // hundred tubes, a hundred connects (and their watches) no longer delay the start.
    try {
      await this.#waitLane.open();
    } catch (error) {
      await this.close();
      throw error;
    }
    this.#sink = sink;
    this.#silenceCheck = setInterval(() => this.#checkSilence(), SILENCE_CHECK_MS);
    this.#silenceCheck.unref();
    this.pump();
  }

  pump(): void {
    const sink = this.#sink;
    if (sink === undefined || this.#paused || this.#silent || this.#options.stopping.aborted) return;
    let free = sink.capacity - this.#asking;
    if (free <= 0) return;
    const lanes = this.#lanes;
    const count = lanes.length;
    const start = this.#turn;
    this.#turn = count === 1 ? 0 : (start + 1) % count;
    for (let i = 0; i < count && free > 0; i += 1) {
      const lane = lanes[(start + i) % count] as Lane;
      if (lane.empty) continue;
      const lc = lane.forAsking();
      if (lc === undefined) continue;
      // An even share of what is left for this lane and the ones after it; a lane that comes back
      // empty hands its share on at the next pump.
      const share = count === 1 ? free : Math.ceil(free / (count - i));
      for (let k = 0; k < share; k += 1) this.#ask(lane, lc);
      free -= share;
    }
    if (free > 0 && this.#nothingToAsk()) {
      if (this.#waiting === undefined) this.#wait();
      this.#options.onSpare?.();
    }
  }

  giveBack(reservation: Reservation): void {
    this.#declined.push(reservation);
  }

  async stopReserving(): Promise<void> {
    // The waiting reserve and idle connections are cut off now: a job one just reserved goes back to
    // ready with the socket. Nothing else is in flight on them, so nothing is lost by not waiting for
    // the server to close its end (a stopped server never would). Connections holding jobs stay open.
    const closing: Promise<void>[] = [];
    for (const lane of this.#allLanes()) {
      for (const lc of lane.connections) if (lc.blocking || lc.idle) closing.push(lc.connection.destroy());
    }
    if (this.#silent) this.#dropSilentAsks();
    await Promise.all(closing);
    // Pipelined reserves answer within a round trip (or the stall watchdog drops their connection).
    if (this.#asking > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }
    await this.#giveBackDeclined();
  }

  async close(): Promise<void> {
    clearInterval(this.#silenceCheck);
    await Promise.all(this.#allLanes().map((lane) => lane.close()));
  }

  /** One `reserve-with-timeout 0` on `lc`. Its reply handlers are made once per connection, not per reserve. */
  #ask(lane: Lane, lc: LaneConnection): void {
    lc.asking += 1;
    this.#asking += 1;
    lc.onAnswer ??= [
      (job) => {
        lc.asking -= 1;
        this.#asking -= 1;
        if (job === null) lane.empty = true;
        else this.#deliver(lane, lc, job, lane.tube as string);
        this.#settled();
      },
      (error) => {
        lc.asking -= 1;
        this.#asking -= 1;
        this.#failed(lane, lc, error);
        this.#settled(!(error instanceof ConnectionError));
      },
    ];
    lc.connection.reserve(0).then(lc.onAnswer[0], lc.onAnswer[1]);
  }

  /** The one waiting reserve, on an idle connection of the waiting lane. */
  #wait(): void {
    const lane = this.#waitLane;
    const lc = lane.forWaiting();
    if (lc === undefined) return;
    lc.blocking = true;
    this.#waiting = lc;
    this.#asking += 1;
    lc.connection.reserve(this.#options.reserveTimeoutSeconds).then(
      (job) => {
        lc.blocking = false;
        this.#waiting = undefined;
        if (job !== null) {
          // Something arrived: every tube is worth asking again.
          for (const each of this.#lanes) each.empty = false;
          if (lane.tube !== undefined) this.#deliver(lane, lc, job, lane.tube);
          else return this.#deliverWoken(lc, job);
        }
        this.#asking -= 1;
        this.#settled();
      },
      (error: unknown) => {
        lc.blocking = false;
        this.#waiting = undefined;
        this.#asking -= 1;
        this.#failed(lane, lc, error);
        this.#settled();
      },
    );
  }

  /** A job from the waiting lane of several tubes: its tube is read before it is handed out. */
  #deliverWoken(lc: LaneConnection, job: ReservedJob): void {
    // In flight on this connection, so that nothing waits on it meanwhile; still counted as asked for.
    lc.asking += 1;
    lc.connection.statsJob(job.id).then(
      (stats) => {
        lc.asking -= 1;
        this.#asking -= 1;
        if (stats === null) this.#options.logger.warn({ jobId: job.id }, 'a reserved job vanished before its tube was read');
        else this.#deliver(this.#waitLane, lc, job, stats.tube);
        this.#settled();
      },
      (error: unknown) => {
        lc.asking -= 1;
        this.#asking -= 1;
        this.#failed(this.#waitLane, lc, error);
        this.#settled();
      },
    );
  }

  /** Hands a reserved job to the sink; its connection holds it until the runner ends it. */
  #deliver(lane: Lane, lc: LaneConnection, job: ReservedJob, tube: string): void {
    const reservation = new Reservation(job, lc.connection, tube, this.#options.publicId?.(job.id));
    lc.jobs.add(reservation);
    reservation.onEnd = () => {
      lc.jobs.delete(reservation);
      lc.onJobEnded?.();
      if (lc.jobs.size === 0) {
        // The connection may now be the idle one a waiting reserve needs; or, with the server waited
        // on already, a connection opened for an earlier wait that is no longer needed.
        if (this.#waiting === undefined) this.pump();
        else lane.trimIdle();
      }
    };
    if (lc.connection.isClosed) {
      // Reserved as the connection went (a stop closing it): the job is back on the server already.
      reservation.end();
      return;
    }
    (this.#sink as JobSink).accept(reservation);
  }

  /** After a reserve settled: reserve more, or tell a stop that nothing is outstanding. */
  #settled(heard = true): void {
    this.#answers += 1;
    if (this.#silent) this.#endSilence(heard);
    if (this.#options.stopping.aborted) {
      if (this.#asking === 0) this.#drained?.();
      return;
    }
    this.pump();
  }

  #failed(lane: Lane, lc: LaneConnection, error: unknown): void {
    const { logger, stopping, onError } = this.#options;
    if (stopping.aborted) return;
    if (error instanceof ConnectionError) {
      if (!lc.lost) {
        lc.lost = true;
        logger.warn({ err: error, lane: lane.index }, 'lost the connection to beanstalkd; reconnecting');
        onError(error);
      }
      lane.remove(lc);
      for (const each of this.#allLanes()) if (each !== lane) each.reviveIfLost();
      return;
    }
    if (error instanceof DeadlineSoonError) {
      logger.warn({ lane: lane.index }, 'reserve answered DEADLINE_SOON: a job held on this connection is near its TTR; pausing');
    } else {
      logger.error({ err: error, lane: lane.index }, 'reserve failed');
      onError(toError(error));
    }
    this.#pause();
  }

  /** Every SILENCE_CHECK_MS: has the server answered anything since pipelined reserves went out? */
  #checkSilence(): void {
    const asked = this.#asking - (this.#waiting === undefined ? 0 : 1) > 0;
    const quiet = asked && this.#askedAtCheck && this.#answers === this.#answersAtCheck;
    this.#answersAtCheck = this.#answers;
    this.#askedAtCheck = asked;
    if (!quiet || this.#silent) return;
    this.#silent = true;
    this.#options.logger.warn(
      { server: formatAddress(this.#options.address), asking: this.#asking },
      'beanstalkd is not answering reserves; its places go to the other servers until it answers',
    );
    if (this.#options.stopping.aborted) this.#dropSilentAsks();
    else this.#options.onSpare?.();
  }

  /** The server answered again after a silence (or its connection was dropped): it may be asked again. */
  #endSilence(heard: boolean): void {
    this.#silent = false;
    if (heard) this.#options.logger.info({ server: formatAddress(this.#options.address) }, 'beanstalkd answers reserves again');
  }

  /**
   * During a stop, on a silent server: connections that only wait for reserve replies are cut off, so the
   * stop does not wait for the stall watchdog. A job reserved on one goes back to ready with it. A
   * connection that holds jobs stays: its settling commands must get their replies.
   */
  #dropSilentAsks(): void {
    for (const lane of this.#allLanes()) {
      for (const lc of lane.connections) if (lc.asking > 0 && lc.jobs.size === 0) void lc.connection.destroy();
    }
  }

  /** Stops reserving for a moment; see PAUSE_MS. */
  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    const timer = setTimeout(() => {
      this.#paused = false;
      this.pump();
    }, PAUSE_MS);
    timer.unref();
  }

  /** True when no lane is worth a `reserve-with-timeout 0`: every one is empty or has no connection. */
  #nothingToAsk(): boolean {
    for (const lane of this.#lanes) {
      if (lane.empty) continue;
      // A lane opening its first connection asks within a round trip: a wait now would hand out
      // jobs one at a time (a stats-job each) until it does.
      if (lane.connecting || lane.connections.some((lc) => !lc.blocking && !lc.connection.isClosed)) return false;
    }
    return true;
  }

  #allLanes(): Lane[] {
    return this.#lanes.includes(this.#waitLane) ? this.#lanes : [...this.#lanes, this.#waitLane];
  }

  async #quit(lc: LaneConnection): Promise<void> {
    await lc.connection.quit().catch((error: unknown) => this.#options.logger.warn({ err: error }, 'closing a connection failed'));
  }

  /**
   * Gives back the jobs that arrived during the stop. Closing their connection gives them back at once,
   * priority kept and no release counted, so that is done where it costs nothing else: a connection
   * that holds no other job, or whose other jobs are all being settled (their replies are a round trip
   * away). Beside a job still running, a job can only be released, which needs its priority (one
   * `stats-job`) and counts a release.
   */
  async #giveBackDeclined(): Promise<void> {
    const declined = this.#declined.splice(0);
    if (declined.length === 0) return;
    const byConnection = new Map<LaneConnection | undefined, Reservation[]>();
    const connections = this.#allLanes().flatMap((lane) => lane.connections);
    for (const reservation of declined) {
      const lc = connections.find((each) => each.jobs.has(reservation));
      const list = byConnection.get(lc) ?? [];
      list.push(reservation);
      byConnection.set(lc, list);
    }
    await Promise.all([...byConnection].map(([lc, jobs]) => this.#giveBackOn(lc, jobs)));
  }

  async #giveBackOn(lc: LaneConnection | undefined, jobs: Reservation[]): Promise<void> {
    const connection = jobs[0]?.connection;
    if (lc === undefined || connection === undefined || connection.isClosed) {
      for (const job of jobs) job.end();
      return;
    }
    const others = [...lc.jobs].filter((job) => !jobs.includes(job));
    if (others.every((job) => job.state !== 'running')) {
      if (others.length > 0) {
        // Their replies settle them, or the connection's loss (the stall watchdog bounds the wait).
        await new Promise<void>((resolve) => {
          lc.onJobEnded = () => {
            if (lc.jobs.size <= jobs.length || connection.isClosed) resolve();
          };
        });
        lc.onJobEnded = undefined;
      }
      await this.#quit(lc);
      for (const job of jobs) job.end();
      return;
    }
    for (const job of jobs) {
      try {
        const stats = await connection.statsJob(job.id);
        if (stats) await connection.release(job.id, stats.priority, 0);
      } catch (error) {
        this.#options.logger.warn(
          { err: error, jobId: job.id },
          'stopping: could not release a job reserved too late to run; it goes back to ready when its connection closes',
        );
      }
      job.end();
    }
  }
}
