/**
 * The scheduler: any number may run, one is active. Each waits for the lease (./lease.ts) on a
 * connection of its own to the chosen server; the one that holds it reconciles the marker tubes
 * (./reconcile.ts) and then reserves markers as they become ready: for each it puts the scheduled job
 * through the schedule's queue, puts the next marker, and deletes the one it reserved, in that order,
 * so that a crash can at worst put one tick twice (the job's `meta.schedule.tick` tells), never lose
 * the schedule's state. The lease and the reserved marker share one connection: whatever ends the
 * connection hands both back together.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { formatAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import { DeadlineSoonError } from '../beanstalk/errors.js';
import type { Beanstalk, ReservedJob } from '../beanstalk/types.js';
import { assertInteger } from '../beanstalk/validate.js';
import { createLogger, type Logger, toError } from '../logging/logger.js';
import { parseServerList, type ServerUrls } from '../servers/server-list.js';
import { backoffDelay } from '../util/backoff.js';
import { compileCron, nextTick } from './cron.js';
import { type DecisionSchedule, decideMarker, delayUntil } from './decide.js';
import { takeLease } from './lease.js';
import { ACTIVE_TUBE, chooseServer, encodeMarker, LOCK_TUBE, markerTube, parseActiveInfo, parseMarker } from './markers.js';
import { deleteIfThere, reconcileTube } from './reconcile.js';
import { listSchedules } from './registry.js';
import type { Schedule } from './types.js';

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  /**
   * The beanstalkd servers. The lease and the markers live on the first by name (see the README's
   * "Schedules"); the scheduled jobs go through each schedule's own queue.
   * @defaultValue `BEANSTALKD_URL` from the environment, else `127.0.0.1:11300`
   */
  readonly url?: ServerUrls;
  /** @defaultValue a pino logger at `info` */
  readonly logger?: Logger;
  /**
   * The lease's TTR, in seconds: how long a stopped (not killed) active scheduler keeps the others
   * waiting. It is touched every third of it. At least 3.
   * @defaultValue 10
   */
  readonly leaseTtrSeconds?: number;
  /**
   * How long any command may wait for the server before the connection is dropped (and the lease with
   * it): a scheduler never waits on a hung server for ever.
   * @defaultValue 5000
   */
  readonly commandTimeoutMs?: number;
  /** The schedules to run. @defaultValue every schedule declared in this process, read when it becomes active */
  readonly schedules?: readonly Schedule[];
}

/** Defaults of {@link SchedulerOptions}. */
export const SCHEDULER_DEFAULTS = Object.freeze({ leaseTtrSeconds: 10, commandTimeoutMs: 5_000 });

/** What a {@link Scheduler} emits. */
export interface SchedulerEvents {
  /** It holds the lease and has reconciled the markers. */
  'scheduler:active': [{ readonly lease: string; readonly server: string }];
  /** It lost the lease (or its connection) and waits for it again. */
  'scheduler:standby': [{ readonly reason: string }];
  /** It put the job of a tick. */
  'scheduler:tick': [{ readonly schedule: string; readonly tick: string; readonly jobId: string; readonly late: boolean }];
  /** A late tick skipped (catchUp `skip`). */
  'scheduler:skip': [{ readonly schedule: string; readonly tick: string }];
}

/** The lease is gone: this scheduler must stop acting at once. */
class LeaseLostError extends Error {
  constructor(what: string) {
    super(`the scheduler lease was lost (${what})`);
    this.name = 'LeaseLostError';
  }
}

/** A holder steps down this long before its lease's TTR runs out without a touch: the touch's own round trip. */
const FENCE_MARGIN_MS = 500;

const RECONNECT_CURVE = Object.freeze({ initial: 250, max: 5_000, jitter: 0.5 });

interface Armed {
  readonly schedule: Schedule;
  readonly decision: DecisionSchedule;
}

/** Runs the declared schedules while it holds the lease; see the module comment. */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  /** The server holding the lease and the markers (`host:port`). */
  readonly server: string;
  readonly #address;
  readonly #logger: Logger;
  readonly #leaseTtr: number;
  readonly #commandTimeoutMs: number;
  readonly #given: readonly Schedule[] | undefined;
  readonly #stop = new AbortController();
  #connection: Beanstalk | undefined;
  #running: Promise<void> | undefined;
  #firing: Promise<void> | undefined;
  #active = false;

  constructor(options: SchedulerOptions = {}) {
    super();
    const chosen = chooseServer(parseServerList(options.url));
    this.server = chosen.name;
    this.#address = chosen.address;
    this.#logger = (options.logger ?? createLogger()).child({ component: 'scheduler' });
    this.#leaseTtr = options.leaseTtrSeconds ?? SCHEDULER_DEFAULTS.leaseTtrSeconds;
    assertInteger(this.#leaseTtr, 'leaseTtrSeconds', 3, 86_400);
    this.#commandTimeoutMs = options.commandTimeoutMs ?? SCHEDULER_DEFAULTS.commandTimeoutMs;
    assertInteger(this.#commandTimeoutMs, 'commandTimeoutMs', 100, 2_147_483_647);
    this.#given = options.schedules;
  }

  /** True while it holds the lease and acts on the markers. */
  get active(): boolean {
    return this.#active;
  }

  /** Starts waiting for the lease, in the background. Idempotent. */
  start(): void {
    this.#running ??= this.#run();
  }

  /**
   * Stops: a marker being handled is finished first (so a stop never leaves a tick half done), then the
   * connection closes and the lease goes straight to a waiting scheduler. Idempotent.
   */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#firing?.catch(() => undefined);
    await this.#connection?.destroy();
    await this.#running;
  }

  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        const connection = await BeanstalkConnection.connect(this.#address, {
          connectTimeoutMs: this.#commandTimeoutMs,
          stallTimeoutMs: this.#commandTimeoutMs,
        });
        this.#connection = connection;
        if (this.#stopped) break;
        failures = 0;
        await this.#serve(connection);
      } catch (error) {
        if (this.#stopped) break;
        const lost = error instanceof LeaseLostError;
        if (!lost) failures += 1;
        const reason = toError(error).message;
        this.#logger.warn(
          { err: toError(error), server: this.server },
          this.#active || lost ? `scheduler no longer active (${reason}); standing by` : `scheduler: ${reason}; retrying`,
        );
      } finally {
        if (this.#active) this.emit('scheduler:standby', { reason: 'lease or connection lost' });
        this.#active = false;
        // Dropping the connection hands back the lease and any reserved marker, at once.
        await this.#connection?.destroy().catch(() => undefined);
        this.#connection = undefined;
      }
      if (!this.#stopped && failures > 0) await this.#sleep(backoffDelay(failures, RECONNECT_CURVE));
    }
  }

  async #serve(connection: Beanstalk): Promise<void> {
    await connection.watch(LOCK_TUBE);
    await connection.ignore('default');
    const touchEveryMs = (this.#leaseTtr * 1_000) / 3;
    const lease = await takeLease(connection, {
      ttrSeconds: this.#leaseTtr,
      waitSeconds: Math.max(1, Math.floor(touchEveryMs / 1_000)),
      stopped: () => this.#stopped,
      sleep: (ms) => this.#sleep(ms),
    });
    if (lease === undefined) return;
    let touchedAt = Date.now();
    // Self-fencing: a holder that went a whole TTR without touching (it was stopped, or starved) takes
    // the lease as lost even if beanstalkd has not timed it out yet. beanstalkd 1.12 sometimes never
    // returns the reserved job of a silent connection at its TTR (see lease.ts), so a standby may
    // already have taken over; a touch would then succeed and make two active schedulers.
    const fence = (): void => {
      if (Date.now() - touchedAt >= this.#leaseTtr * 1_000 - FENCE_MARGIN_MS) throw new LeaseLostError('no touch within the TTR');
    };
    const touch = async (): Promise<void> => {
      fence();
      const sent = Date.now();
      await this.#touchLease(connection, lease);
      touchedAt = sent;
    };
    const armed = (this.#given ?? listSchedules()).map((schedule) => ({
      schedule,
      decision: {
        cron: schedule.cron,
        timezone: schedule.timezone,
        catchUp: schedule.catchUp,
        compiled: compileCron(schedule.cron, schedule.timezone),
      },
    }));
    const byTube = new Map<string, Armed>(armed.map((entry) => [markerTube(entry.schedule.name), entry]));
    await this.#reconcileAll(connection, armed, touch);
    await this.#publishActive(connection, lease);
    this.#active = true;
    this.#logger.info({ lease, server: this.server, schedules: armed.map((entry) => entry.schedule.name) }, 'scheduler active');
    this.emit('scheduler:active', { lease, server: this.server });
    if (armed.length === 0) this.#logger.warn('no schedule is declared: the active scheduler holds the lease and puts nothing');

    const lastTicks = new Map<string, number>();
    const waitSeconds = Math.max(1, Math.floor(touchEveryMs / 1_000));
    while (!this.#stopped) {
      if (Date.now() - touchedAt >= touchEveryMs) await touch();
      let job: ReservedJob | null;
      try {
        job = await connection.reserve(waitSeconds);
      } catch (error) {
        // The lease (or a marker) is in its last second: touch now rather than lose it.
        if (error instanceof DeadlineSoonError) {
          await touch();
          continue;
        }
        throw error;
      }
      if (job === null || this.#stopped) continue;
      const entry = byTube.get(await this.#tubeOf(connection, job));
      if (entry === undefined) {
        // Only marker tubes are watched, so this is a job gone between the reserve and the stats: let go.
        await deleteIfThere(connection, job.id).catch(() => undefined);
        continue;
      }
      const firing = this.#fire(connection, touch, entry, job, lastTicks);
      this.#firing = firing;
      try {
        await firing;
      } finally {
        this.#firing = undefined;
      }
    }
  }

  async #touchLease(connection: Beanstalk, lease: string): Promise<void> {
    try {
      await connection.touch(lease);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') throw new LeaseLostError('touch: NOT_FOUND');
      throw error;
    }
  }

  /**
   * Reconciles each schedule's tube on the lease's connection, watching one marker tube at a time (the
   * collapse of several markers reserves every ready job it watches), then watches them all.
   */
  async #reconcileAll(connection: Beanstalk, armed: readonly Armed[], touch: () => Promise<void>): Promise<void> {
    let watched = LOCK_TUBE;
    for (const { schedule, decision } of armed) {
      const tube = markerTube(schedule.name);
      await connection.watch(tube);
      await connection.ignore(watched);
      watched = tube;
      const outcome = await reconcileTube(
        connection,
        { name: schedule.name, cron: schedule.cron, timezone: schedule.timezone, nextAfter: (now) => nextTick(decision.compiled, now) },
        this.#leaseTtr,
        () => new Date(),
      );
      if (outcome !== 'kept') this.#logger.info({ schedule: schedule.name, outcome }, `schedule marker ${outcome}`);
      await touch();
    }
    for (const { schedule } of armed) await connection.watch(markerTube(schedule.name));
  }

  /** The tube a reserved job came from: one `stats-job`, paid once per tick (the body is not to be trusted for it). */
  async #tubeOf(connection: Beanstalk, job: ReservedJob): Promise<string> {
    return (await connection.statsJob(job.id))?.tube ?? '';
  }

  /** Handles one reserved marker; see {@link decideMarker} for what each case means. */
  async #fire(
    connection: Beanstalk,
    touch: () => Promise<void>,
    entry: Armed,
    job: ReservedJob,
    lastTicks: Map<string, number>,
  ): Promise<void> {
    const { schedule, decision } = entry;
    const tube = markerTube(schedule.name);
    const log = this.#logger.child({ schedule: schedule.name });
    const putMarker = async (tick: Date): Promise<void> => {
      const body = encodeMarker({ schedule: schedule.name, tick: tick.toISOString(), cron: schedule.cron, timezone: schedule.timezone });
      await connection.putInTube(tube, Buffer.from(body), {
        priority: 0,
        delaySeconds: delayUntil(tick, new Date()),
        ttrSeconds: this.#leaseTtr,
      });
    };
    const marker = parseMarker(job.body);
    // Not a marker, or one of another schedule put in this tube by hand: replaced by a fresh one.
    if (marker === undefined || marker.schedule !== schedule.name) {
      log.warn({ jobId: job.id }, 'a job in a schedule marker tube is not its marker; replacing it');
      const next = nextTick(decision.compiled, new Date());
      if (next !== null) await putMarker(next);
      await this.#deleteMarker(connection, job.id);
      return;
    }
    // Still the holder of the lease and of this marker? A scheduler that was stopped (SIGSTOP) and
    // resumed finds out here, before it puts anything, rather than at its next touch.
    await Promise.all([touch(), this.#touchMarker(connection, job.id)]);
    const decided = decideMarker(marker, decision, new Date(), lastTicks.get(schedule.name));
    switch (decided.kind) {
      case 'duplicate':
        log.info({ tick: marker.tick }, 'dropped a second marker for a tick already run');
        await this.#deleteMarker(connection, job.id);
        return;
      case 'early':
        await putMarker(decided.tick);
        await this.#deleteMarker(connection, job.id);
        return;
      case 'replace':
        log.info({ was: { cron: marker.cron, timezone: marker.timezone } }, 'the schedule changed; its marker is replaced');
        if (decided.next !== null) await putMarker(decided.next);
        await this.#deleteMarker(connection, job.id);
        return;
      case 'skip':
        log.info({ tick: marker.tick, next: decided.next?.toISOString() }, 'late tick skipped (catchUp: skip)');
        if (decided.next !== null) await putMarker(decided.next);
        await this.#deleteMarker(connection, job.id);
        lastTicks.set(schedule.name, decided.tick.getTime());
        this.emit('scheduler:skip', { schedule: schedule.name, tick: marker.tick });
        return;
      case 'run': {
        const tick = decided.tick.toISOString();
        const options = {
          ...(schedule.priority === undefined ? {} : { priority: schedule.priority }),
          ...(schedule.ttr === undefined ? {} : { ttr: schedule.ttr }),
        };
        const jobId = await schedule.queue.putTask(schedule.task, schedule.kwargs, options, { schedule: { name: schedule.name, tick } });
        if (decided.next !== null) await putMarker(decided.next);
        else log.info('the schedule fires no more');
        await this.#deleteMarker(connection, job.id);
        lastTicks.set(schedule.name, decided.tick.getTime());
        log.info({ tick, jobId, late: decided.late, tube: schedule.task.tube }, 'scheduled job put');
        this.emit('scheduler:tick', { schedule: schedule.name, tick, jobId, late: decided.late });
        return;
      }
    }
  }

  async #touchMarker(connection: Beanstalk, id: string): Promise<void> {
    try {
      await connection.touch(id);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') throw new LeaseLostError('marker touch: NOT_FOUND');
      throw error;
    }
  }

  /** NOT_FOUND here means the marker's reservation was lost (its TTR ran out): stop acting. */
  async #deleteMarker(connection: Beanstalk, id: string): Promise<void> {
    try {
      await connection.delete(id);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') throw new LeaseLostError('marker delete: NOT_FOUND');
      throw error;
    }
  }

  /** Replaces the info job that names the active scheduler (read by `bsworker schedules`). */
  async #publishActive(connection: Beanstalk, lease: string): Promise<void> {
    await connection.use(ACTIVE_TUBE);
    for (let round = 0; round < 16; round += 1) {
      const old = await connection.peekReady();
      if (old === null) break;
      if (parseActiveInfo(old.body) === undefined)
        this.#logger.warn({ jobId: old.id }, `deleting a job that is not scheduler info from ${ACTIVE_TUBE}`);
      await deleteIfThere(connection, old.id);
    }
    const info = { host: hostname(), pid: process.pid, since: new Date().toISOString(), lease };
    await connection.putInTube(ACTIVE_TUBE, Buffer.from(JSON.stringify(info)), { priority: 0, delaySeconds: 0, ttrSeconds: 60 });
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      const signal = this.#stop.signal;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** `host:port` of the server a scheduler with `url` uses. */
export function schedulerServer(url?: ServerUrls): string {
  return formatAddress(chooseServer(parseServerList(url)).address);
}
