/**
 * An in-memory beanstalkd for unit tests of the worker loop, and the setup those tests share. The fake
 * is the seam the Worker is built around (its `connect` option), so no server is needed and every
 * command the worker sends is recorded in order, with the connection it was sent on.
 *
 * Nothing built on this waits a fixed time to see whether something happened: tests await events, or a
 * command reaching the fake. Timers appear only as upper bounds that turn a hang into a readable failure.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { pino } from 'pino';

import { ConnectionError, NotFoundError } from '../../src/beanstalk/errors.js';
import type { JobStats, PutParams, ReservedJob, TubeStats } from '../../src/beanstalk/types.js';
import { JobQueue } from '../../src/tasks/queue.js';
import type { WorkerEvents } from '../../src/worker/events.js';
import type { WorkerOptions } from '../../src/worker/options.js';
import { Worker } from '../../src/worker/worker.js';
import { EventRecorder, LogCapture } from './events.js';
import { UnexpectedBeanstalk } from './fake-beanstalk.js';

/** Upper bound for anything a test awaits; far above what any step here takes, so never the cause of a pass. */
export const WAIT_MS = 5_000;
/** Per-test bound (inherited from each describe), in case a wait without its own bound hangs. */
export const SUITE = { timeout: 20_000 };
/** Only for error messages, which name the server as the real adapter does: nothing listens there. */
const SERVER = '127.0.0.1:11300';

// ---------------------------------------------------------------------------------------------------
// The fake beanstalkd: one in-memory server, any number of connections to it
// ---------------------------------------------------------------------------------------------------

/** A job as the {@link FakeServer} keeps it; tests read it through {@link FakeServer.job} and {@link FakeServer.jobsIn}. */
export interface FakeJob {
  readonly id: string;
  readonly body: Buffer;
  readonly tube: string;
  priority: number;
  readonly ttrSeconds: number;
  /** What stats-job reports; the worker derives a run's attempt from it (releases + 1). */
  releases: number;
  /** What stats-job reports; the worker compares it with maxKicks to bound how often a job is revived. */
  kicks: number;
  buries: number;
  state: 'ready' | 'reserved' | 'buried' | 'deleted';
  /** The connection holding the reservation: only it may delete, release, bury or touch the job. */
  holder: FakeConnection | undefined;
  /** statsJob answers null, as beanstalkd does once the job is gone (TTR ran out, deleted elsewhere). */
  readonly gone: boolean;
}

/** Options of {@link FakeServer.addJob}: the state a job starts in, as if a producer and earlier runs had left it so. */
export interface AddJobOptions {
  /** The tube the job is in: what reserve filters on and what statsJob reports. */
  readonly tube: string;
  /** @defaultValue 1024, beanstalkd's default */
  readonly priority?: number;
  /** As if kicked that many times already (each after a bury). @defaultValue 0 */
  readonly kicks?: number;
  /** As if released that many times already, so the run's attempt is releases + 1. @defaultValue 0 */
  readonly releases?: number;
  /** What statsJob reports; the worker touches a running job every max(500 ms, ttr / 2). @defaultValue 60 */
  readonly ttrSeconds?: number;
  /** Gone by the time stats-job asks (TTR ran out, deleted by an operator). @defaultValue false */
  readonly gone?: boolean;
  /** Starts buried instead of ready, for auto-kick. */
  readonly buried?: boolean;
}

/** One command as the {@link FakeServer} recorded it. */
export interface Command {
  /** Which connection sent it: its index in {@link FakeServer.connections}, in the order they were opened. */
  readonly conn: number;
  readonly command: string;
  readonly args: readonly unknown[];
}

/**
 * The server side: jobs, their state and counters, and every command of every connection. A job is
 * reserved by one connection, and only that connection may settle or touch it (anything else answers
 * NOT_FOUND, as beanstalkd does), so a worker that used the wrong connection shows as an overrun. A
 * closed connection gives its reserved jobs back to ready, as beanstalkd does.
 *
 * Two liberties: `release` makes the job ready at once whatever its delay (the delay is asserted from
 * the recorded command, so retries run without waiting), and there are no delayed jobs at all.
 */
export class FakeServer {
  /** Every command, in the order the worker sent it. */
  readonly commands: Command[] = [];
  /** Every connection opened, in order. */
  readonly connections: FakeConnection[] = [];
  /** Errors the next reserves (on any connection) reject with, in order. */
  readonly reserveErrors: Error[] = [];
  /** Errors the next deletes reject with, in order. */
  readonly deleteErrors: Error[] = [];
  /** Errors the next stats-jobs reject with, in order. */
  readonly statsJobErrors: Error[] = [];
  /** Errors the next puts reject with, in order. */
  readonly putErrors: Error[] = [];
  /** Things beanstalkd would allow but a correct worker never does; afterEach fails the test on any. */
  readonly violations: string[] = [];
  /** How many of the next connection attempts fail with ConnectionError (the server is down). */
  refuseConnects = 0;
  /**
   * When set, quit() answers a pending reserve with this job instead of failing it: the race where the
   * server hands out a job just as a stop closes the connection.
   */
  jobOnQuit: { body: string; tube: string } | undefined;
  readonly #jobs = new Map<string, FakeJob>();
  /** Ready jobs, in the order reserve hands them out. */
  readonly #ready: FakeJob[] = [];
  #nextId = 1;
  #commandWaiters: { done: () => boolean; resolve: () => void }[] = [];

  /** What the Worker's `connect` option calls. */
  connect(): Promise<FakeConnection> {
    if (this.refuseConnects > 0) {
      this.refuseConnects -= 1;
      return Promise.reject(new ConnectionError(SERVER, `connect ECONNREFUSED ${SERVER}`));
    }
    const connection = new FakeConnection(this, this.connections.length);
    this.connections.push(connection);
    return Promise.resolve(connection);
  }

  /** Queues a job (or buries it, with `buried`); `body` is sent as is. Returns its id. */
  addJob(body: string | Buffer, options: AddJobOptions): string {
    const id = String(this.#nextId++);
    const kicks = options.kicks ?? 0;
    const job: FakeJob = {
      id,
      body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
      tube: options.tube,
      priority: options.priority ?? 1024,
      ttrSeconds: options.ttrSeconds ?? 60,
      releases: options.releases ?? 0,
      kicks,
      // Each kick followed a bury.
      buries: kicks + (options.buried ? 1 : 0),
      state: 'buried',
      holder: undefined,
      gone: options.gone ?? false,
    };
    this.#jobs.set(id, job);
    if (!options.buried) this.makeReady(job);
    return id;
  }

  /** The job `id`, whatever its state, or undefined if it never existed. */
  job(id: string): FakeJob | undefined {
    return this.#jobs.get(id);
  }

  /** The jobs of `tube` that still exist. */
  jobsIn(tube: string): FakeJob[] {
    return [...this.#jobs.values()].filter((job) => job.tube === tube && job.state !== 'deleted');
  }

  /** Hands `job` to a pending reserve that watches its tube, else queues it (first, for a given-back job). */
  makeReady(job: FakeJob, first = false): void {
    job.state = 'ready';
    job.holder = undefined;
    for (const connection of this.connections) if (connection.offer(job)) return;
    if (first) this.#ready.unshift(job);
    else this.#ready.push(job);
  }

  /** Takes the first ready job from a tube `connection` watches. */
  takeReady(connection: FakeConnection): FakeJob | undefined {
    const index = this.#ready.findIndex((job) => connection.watched.has(job.tube));
    return index === -1 ? undefined : this.#ready.splice(index, 1)[0];
  }

  /** A closed connection's reservations go back to ready at once. */
  giveBack(connection: FakeConnection): void {
    for (const job of this.#jobs.values()) if (job.state === 'reserved' && job.holder === connection) this.makeReady(job, true);
  }

  /** Called by a {@link FakeConnection} for every command it is sent; wakes the waits it satisfies. */
  record(conn: number, command: string, args: unknown[]): void {
    this.commands.push({ conn, command, args });
    const due = this.#commandWaiters.filter((waiter) => waiter.done());
    this.#commandWaiters = this.#commandWaiters.filter((waiter) => !due.includes(waiter));
    for (const waiter of due) waiter.resolve();
  }

  /** The arguments of every call of `command`, on any connection. */
  calls(command: string): (readonly unknown[])[] {
    return this.commands.filter((entry) => entry.command === command).map((entry) => entry.args);
  }

  /** The commands sent on connection `conn`, as `[command, ...args]`. */
  sentOn(conn: number): unknown[][] {
    return this.commands.filter((entry) => entry.conn === conn).map((entry) => [entry.command, ...entry.args]);
  }

  /** The connections that sent `command` at least once, in index order. */
  connectionsThatSent(command: string): number[] {
    return [...new Set(this.commands.filter((entry) => entry.command === command).map((entry) => entry.conn))].sort((a, b) => a - b);
  }

  /** Resolves once `done()` holds, checked after every command; rejects after WAIT_MS with `what`. */
  waitUntil(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    const sent = new Promise<void>((resolve) => this.#commandWaiters.push({ done, resolve }));
    return within(sent, WAIT_MS, what);
  }

  /** Resolves once `command` has been sent `times` times (counting those already sent). */
  waitForCommand(command: string, times = 1): Promise<void> {
    return this.waitUntil(() => this.calls(command).length >= times, `waiting for the worker to send ${command} ${times} time(s)`);
  }

  /**
   * Resolves once the last command on `conn` is a waiting reserve (a timeout above 0): with no job ready,
   * the worker is idle, waiting on it. A drop then fails that reserve, rather than landing between two
   * jobs unseen.
   */
  waitForIdleReserve(conn: number): Promise<void> {
    return this.waitUntil(() => {
      const last = this.sentOn(conn).at(-1);
      return last?.[0] === 'reserve' && last[1] !== 0;
    }, `connection ${conn} waiting on a reserve`);
  }

  /** The server goes away: every connection is lost, pending reserves fail as on a real lost connection. */
  dropConnections(): void {
    for (const connection of this.connections) connection.close(`the connection to beanstalkd at ${SERVER} closed`);
  }

  /** Test cleanup: closes what is still open, without recording anything. */
  closeAll(): void {
    for (const connection of this.connections) connection.close('closed by the test cleanup');
  }
}

/**
 * One connection to the {@link FakeServer}. `reserve` hands out ready jobs of the watched tubes; with
 * none it waits, resolving null after its timeout, or rejecting with ConnectionError the moment the
 * connection is closed, which is what a real connection does when a stop closes it under a pending
 * reserve. Every command on a closed connection rejects with ConnectionError. Commands a worker should
 * never send fail loudly (see UnexpectedBeanstalk).
 */
export class FakeConnection extends UnexpectedBeanstalk {
  /** The tubes reserve takes jobs from: a new connection watches `default` only, as on beanstalkd. */
  readonly watched = new Set(['default']);
  #using = 'default';
  #waiter: { resolve: (job: ReservedJob | null) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;
  readonly #server: FakeServer;
  readonly #index: number;

  constructor(server: FakeServer, index: number) {
    super(`FakeBeanstalk connection ${index}`);
    this.#server = server;
    this.#index = index;
  }

  /** Hands `job` to this connection's pending reserve, if there is one and it watches the job's tube. */
  offer(job: FakeJob): boolean {
    const waiter = this.#waiter;
    if (!waiter || this.isClosed || !this.watched.has(job.tube)) return false;
    this.#waiter = undefined;
    clearTimeout(waiter.timer);
    this.#reserved(job);
    waiter.resolve({ id: job.id, body: job.body });
    return true;
  }

  /** The connection ends: a pending reserve fails, reserved jobs go back to ready. Idempotent. */
  close(message: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(new ConnectionError(SERVER, message, { command: 'reserve-with-timeout' }));
    }
    this.#server.giveBack(this);
  }

  /**
   * Records the command, then fails it as a real connection would if this one is closed. beanstalkd
   * answers nothing on a connection behind a waiting reserve, so a command written there is a violation
   * (for a job's delete, release, bury or touch, a job that may overrun its TTR).
   */
  #send(command: string, ...args: unknown[]): void {
    this.#server.record(this.#index, command, args);
    if (this.#waiter && !this.isClosed)
      this.#server.violations.push(`connection ${this.#index}: ${command} written behind a waiting reserve`);
    if (this.isClosed) throw new ConnectionError(SERVER, `${command}: the connection is closed`, { command });
  }

  #reserved(job: FakeJob): void {
    job.state = 'reserved';
    job.holder = this;
  }

  /** The job `id` when this connection holds its reservation, else NOT_FOUND as beanstalkd answers. */
  #held(command: string, id: string): FakeJob {
    const job = this.#server.job(id);
    if (!job || job.gone || job.state !== 'reserved' || job.holder !== this) throw new NotFoundError(command, id);
    return job;
  }

  override async watch(tube: string): Promise<number> {
    this.#send('watch', tube);
    this.watched.add(tube);
    return this.watched.size;
  }
  override async ignore(tube: string): Promise<number> {
    this.#send('ignore', tube);
    this.watched.delete(tube);
    return this.watched.size;
  }
  override async use(tube: string): Promise<void> {
    this.#send('use', tube);
    this.#using = tube;
  }
  override async reserve(timeoutSeconds: number): Promise<ReservedJob | null> {
    this.#send('reserve', timeoutSeconds);
    const error = this.#server.reserveErrors.shift();
    if (error) throw error;
    const job = this.#server.takeReady(this);
    if (job) {
      this.#reserved(job);
      return { id: job.id, body: job.body };
    }
    // `reserve-with-timeout 0` answers TIMED_OUT at once and never blocks the connection.
    if (timeoutSeconds === 0) return null;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve(null);
      }, timeoutSeconds * 1000);
      this.#waiter = { resolve, reject, timer };
    });
  }
  override async statsJob(id: string): Promise<JobStats | null> {
    this.#send('statsJob', id);
    const error = this.#server.statsJobErrors.shift();
    if (error) throw error;
    const job = this.#server.job(id);
    if (!job || job.gone || job.state === 'deleted') return null;
    return {
      id,
      tube: job.tube,
      state: job.state,
      priority: job.priority,
      ageSeconds: 0,
      delaySeconds: 0,
      ttrSeconds: job.ttrSeconds,
      timeLeftSeconds: job.ttrSeconds - 1,
      reserves: job.releases + job.kicks + 1,
      timeouts: 0,
      releases: job.releases,
      buries: job.buries,
      kicks: job.kicks,
    };
  }
  override async statsTube(tube: string): Promise<TubeStats | null> {
    this.#send('statsTube', tube);
    const jobs = this.#server.jobsIn(tube);
    // beanstalkd drops a tube nobody uses, watches or fills: NOT_FOUND, which the adapter makes null.
    if (jobs.length === 0) return null;
    const count = (state: FakeJob['state']) => jobs.filter((job) => job.state === state).length;
    return {
      name: tube,
      urgent: jobs.filter((job) => job.state === 'ready' && job.priority < 1024).length,
      ready: count('ready'),
      reserved: count('reserved'),
      delayed: 0,
      buried: count('buried'),
      total: jobs.length,
      using: 0,
      watching: 0,
      waiting: 0,
      deletes: 0,
      pauseSeconds: 0,
      pauseTimeLeftSeconds: 0,
    };
  }
  override async putInTube(tube: string, body: Buffer, params: PutParams): Promise<string> {
    this.#send('putInTube', tube, body, params);
    const error = this.#server.putErrors.shift();
    if (error) throw error;
    this.#using = tube;
    return this.#server.addJob(body, { tube, priority: params.priority, ttrSeconds: params.ttrSeconds });
  }
  override async delete(id: string): Promise<void> {
    this.#send('delete', id);
    const error = this.#server.deleteErrors.shift();
    if (error) throw error;
    const job = this.#held('delete', id);
    job.state = 'deleted';
    job.holder = undefined;
  }
  override async release(id: string, priority: number, delaySeconds: number): Promise<void> {
    this.#send('release', id, priority, delaySeconds);
    const job = this.#held('release', id);
    job.releases += 1;
    job.priority = priority;
    // Ready at once whatever the delay: see FakeServer.
    this.#server.makeReady(job);
  }
  override async bury(id: string, priority: number): Promise<void> {
    this.#send('bury', id, priority);
    const job = this.#held('bury', id);
    job.state = 'buried';
    job.holder = undefined;
    job.buries += 1;
    job.priority = priority;
  }
  override async touch(id: string): Promise<void> {
    this.#send('touch', id);
    this.#held('touch', id);
  }
  override async kick(bound: number): Promise<number> {
    this.#send('kick', bound);
    const buried = this.#server
      .jobsIn(this.#using)
      .filter((job) => job.state === 'buried')
      .slice(0, bound);
    for (const job of buried) {
      job.kicks += 1;
      this.#server.makeReady(job);
    }
    return buried.length;
  }
  override async quit(): Promise<void> {
    this.#server.record(this.#index, 'quit', []);
    const late = this.#server.jobOnQuit;
    this.#server.jobOnQuit = undefined;
    // Added while this reserve is pending, the job goes to it; close() then gives it back.
    if (late && this.#waiter) this.#server.addJob(late.body, { tube: late.tube });
    this.close('the connection was closed by quit()');
  }
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/** Every worker event the tests look at; {@link setup} records all of them from the start. */
const EVENT_NAMES = [
  'job:reserved',
  'job:completed',
  'job:failed',
  'job:buried',
  'job:deleted',
  'job:released',
  'job:overrun',
  'worker:error',
  'worker:reconnected',
  'worker:stopped',
] as const satisfies readonly (keyof WorkerEvents)[];

/** The worker events a test may wait for: a misspelt name is a type error, not a wait that times out. */
export type EventName = (typeof EVENT_NAMES)[number];
/** A recorded event's payload. */
// biome-ignore lint/suspicious/noExplicitAny: payloads differ per event; tests read the fields they need.
export type Payload = any;

/** Rejects with `what` when `promise` has not settled within `ms`: turns a hang into a failure. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve function outside, for jobs that finish when the test says so. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets pending callbacks run: a few turns of the event loop, never a wall-clock wait. */
export async function letEventLoopTurn(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise that never settles: a task that ignores its signal. */
export function forever(): Promise<never> {
  return new Promise<never>(() => undefined);
}

/** A fresh tube name: each test registers its tasks under its own tubes, so tests never see each other's tasks. */
export function randomTube(): string {
  return `t${randomUUID().slice(0, 8)}`;
}

/** A job body as a producer in any language would write it. */
export function body(funcName: string, tube: string | undefined, kwargs: Record<string, unknown> = {}): string {
  return JSON.stringify(tube === undefined ? { func_name: funcName, kwargs } : { func_name: funcName, tube, kwargs });
}

/** The payloads of every recorded `name` event, oldest first. */
export function payloads(events: EventRecorder<Payload, EventName>, name: EventName): Payload[] {
  return events.events.filter((event) => event.name === name).map((event) => event.payload);
}

/**
 * Registers the tasks the tests run (`queue.task(tube)`), which is all it is for here. Inline, so it never
 * opens a connection; silent, as it has nothing to report.
 */
export const queue = new JobQueue({ inline: true, logger: pino({ level: 'silent' }) });

// Workers and fakes made by the current test; stopped afterwards so that no loop outlives its test.
const running: { worker: Worker; fake: FakeServer }[] = [];

/**
 * Stops every worker {@link setup} made since the last call, closes its fake server, and then fails if
 * any fake saw a violation (see {@link FakeServer.violations}). Register it in each file that calls
 * setup, as `afterEach(stopWorkers)`: a loop left running would send its commands into the next test.
 */
export async function stopWorkers(): Promise<void> {
  const all = running.splice(0);
  const violations: string[] = [];
  for (const { worker, fake } of all) {
    const stopping = worker.stop();
    // Forced only once the graceful stop is under way: a force in the same turn as the first stop() is
    // not seen (the bug the 'neither deletes nor buries...' test shows), and the grace timer it would
    // leave running keeps this process alive for graceMs after the last test.
    await letEventLoopTurn();
    worker.stop({ force: true });
    // Bounded: a test that found a stop() that never resolves must not also hang the suite.
    await within(stopping, 1_000, 'cleanup stop').catch(() => undefined);
    fake.closeAll();
    violations.push(...fake.violations);
  }
  // After every worker is stopped, so that a failure here leaves no loop running.
  assert.deepEqual(violations, [], 'the worker did something a correct worker never does');
}

/**
 * A Worker on a fresh fake server, logging to a captured logger. The reserve timeout is long on purpose.
 * Needs `afterEach(stopWorkers)` in the calling file (see {@link stopWorkers}).
 */
export function setup(options: Omit<WorkerOptions, 'connect' | 'logger'>) {
  const fake = new FakeServer();
  // At debug, so that tests can assert on every line the worker writes.
  const logs = new LogCapture();
  const logger = pino({ level: 'debug' }, logs.stream);
  let connects = 0;
  const worker = new Worker({
    // Long, so that a stop which waited for the reserve instead of interrupting it would show.
    reserveTimeoutSeconds: 30,
    ...options,
    logger,
    connect: () => {
      connects += 1;
      return fake.connect();
    },
  });
  running.push({ worker, fake });
  // Every worker event, so a test can await one that may already have been emitted, and assert on the order.
  const events = new EventRecorder<Payload, EventName>(worker, EVENT_NAMES, { timeoutMs: WAIT_MS });
  /** Connection attempts so far, refused ones included. */
  return { worker, fake, lines: logs.lines, events, connects: () => connects };
}
