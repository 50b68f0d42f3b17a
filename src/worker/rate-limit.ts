/**
 * Rate limits of tasks (`rateLimit: { max, perSeconds }`), enforced in each worker process on its own.
 *
 * The limit is a sliding log: the start times of the task's last `max` jobs, in a ring. A job may start
 * when the oldest of them is at least `perSeconds` old, so no window of `perSeconds` ever holds more than
 * `max` starts. A token bucket was the other candidate: it is as cheap, but a full bucket lets `max`
 * start at once and refills while they run, so one window can see almost `2 × max` starts; the log
 * keeps the promise the option's name makes, for 8 bytes per allowed start.
 *
 * A job over its limit is held, never released: beanstalkd's `releases` counter is the job's attempt
 * count (see ./process-job.ts), so a release would spend one of its retries on waiting. While it waits
 * its TTR is kept alive (./keep-alive.ts) and, up to a bound, it gives its run place back to the runner,
 * so that other tasks' jobs keep running beside it; past that bound a waiting job keeps its place, which
 * slows reserving down rather than holding ever more jobs. When its turn comes it takes a place again
 * (waiting for one if need be, so `concurrency` still bounds what runs). A stop gives waiting jobs back
 * at once: they never ran, so nothing is lost and nothing is counted.
 *
 * One limiter per registered task, for the whole process: every Worker in it, and every task thread of
 * it (threads run tasks, but jobs are processed on the main thread), share it.
 */
import { performance } from 'node:perf_hooks';
import type { JobStats } from '../beanstalk/types.js';
import type { Logger } from '../logging/logger.js';
import type { RegisteredTask } from '../tasks/registry.js';
import type { RateLimit } from '../tasks/types.js';
import { keepAlive } from './keep-alive.js';
import type { JobContext, JobStatsCache } from './process-job.js';
import type { Reservation } from './reservation.js';

/**
 * Starts in a sliding window: at most `max` in any `windowMs`. Pure: the caller passes the time, so
 * tests drive it with a fake clock.
 */
export class SlidingWindow {
  readonly max: number;
  readonly windowMs: number;
  /** The last `max` start times; `-Infinity` where fewer have happened. `#next` is the oldest. */
  readonly #starts: Float64Array;
  #next = 0;

  constructor(max: number, windowMs: number) {
    this.max = max;
    this.windowMs = windowMs;
    this.#starts = new Float64Array(max).fill(Number.NEGATIVE_INFINITY);
  }

  /** Milliseconds until a start is allowed (0: now), without taking it. */
  waitMs(now: number): number {
    const wait = (this.#starts[this.#next] as number) + this.windowMs - now;
    return wait > 0 ? wait : 0;
  }

  /** Takes a start at `now` when one is allowed: returns 0. Otherwise takes nothing and returns the wait. */
  take(now: number): number {
    const wait = this.waitMs(now);
    if (wait === 0) {
      this.#starts[this.#next] = now;
      this.#next = this.#next + 1 === this.max ? 0 : this.#next + 1;
    }
    return wait;
  }
}

/**
 * What a waiting job needs from the runner that holds it: its run place, given back while it waits and
 * taken again when its turn comes. Implemented by the Runner (./runner.ts).
 */
export interface RunPlaces {
  /** The runner's `concurrency` (see {@link waitingBound}); 0 when the job must wait in its place. */
  readonly concurrency: number;
  /** The job stops counting against the places (the source may reserve another). */
  leave(reservation: Reservation): void;
  /**
   * The job takes a place again: true when it did at once; otherwise `onPlace` is called once it has
   * one (before the source is offered it). {@link cancelRejoin} withdraws the request.
   */
  rejoin(reservation: Reservation, onPlace: () => void): boolean;
  /** Withdraws a request made by {@link rejoin} that is still waiting. */
  cancelRejoin(reservation: Reservation): void;
  /** `from` hands its place to `to` (both jobs of this runner): no place is freed or taken. */
  swap(from: Reservation, to: Reservation): void;
}

/**
 * The places of a job no runner holds (never expected outside tests): it waits keeping whatever it
 * holds, which still keeps the limit.
 */
const IN_PLACE: RunPlaces = {
  concurrency: 0,
  leave: () => undefined,
  rejoin: () => true,
  cancelRejoin: () => undefined,
  swap: () => undefined,
};

/** Why the run of a waiting job did not go ahead; the job is no longer this worker's to run. */
const GIVEN_BACK = false;

/** One job waiting for its turn. */
class Waiter {
  /** True while the job keeps its run place as it waits (the task's bound of waiting jobs was reached). */
  holdsPlace: boolean;
  /** Asked its runner for a place, not given one yet. */
  wantsPlace = false;
  stopKeepAlive: (() => void) | undefined;
  readonly since = performance.now();
  resolve!: (go: boolean) => void;
  readonly granted = new Promise<boolean>((resolve) => {
    this.resolve = resolve;
  });

  constructor(
    readonly reservation: Reservation,
    readonly places: RunPlaces,
    readonly ctx: JobContext,
    readonly log: Logger,
    holdsPlace: boolean,
  ) {
    this.holdsPlace = holdsPlace;
  }
}

/** The limiter of one task, and the jobs waiting for it, oldest first. */
class TaskLimiter {
  readonly window: SlidingWindow;
  readonly waiting: Waiter[] = [];
  /** Waiting jobs that gave their run place back. */
  outside = 0;
  /** The head job is waiting for a run place (its turn came while every place was taken). */
  #placePending = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(limit: RateLimit) {
    this.window = new SlidingWindow(limit.max, limit.perSeconds * 1000);
  }

  /** Grants turns to the waiting jobs while the window allows, oldest first; arms a timer for the next. */
  pump(): void {
    while (this.waiting.length > 0 && !this.#placePending) {
      const now = performance.now();
      const wait = this.window.waitMs(now);
      if (wait > 0) {
        this.#arm(wait);
        return;
      }
      const head = this.waiting[0] as Waiter;
      if (!head.holdsPlace) {
        // A later job of the same runner that kept its place hands it over: the place stays in use,
        // the number waiting outside stays the same, and the oldest job goes first.
        const donor = this.#donorFor(head);
        if (donor !== undefined) {
          donor.holdsPlace = false;
          head.holdsPlace = true;
          head.places.swap(donor.reservation, head.reservation);
        } else {
          head.wantsPlace = true;
          const now = head.places.rejoin(head.reservation, () => {
            head.wantsPlace = false;
            this.#placePending = false;
            this.#start(head);
            this.pump();
          });
          if (!now) {
            this.#placePending = true;
            return;
          }
          head.wantsPlace = false;
        }
      }
      this.#start(head);
    }
  }

  /**
   * Removes a waiting job that will not run here (given back, gone); its run place is not taken again.
   * `pump: false` while a stop removes several, so that none of them is granted a turn meanwhile.
   */
  remove(waiter: Waiter, pump = true): void {
    const at = this.waiting.indexOf(waiter);
    if (at === -1) return;
    this.waiting.splice(at, 1);
    if (!waiter.holdsPlace) this.outside -= 1;
    if (waiter.wantsPlace) {
      waiter.wantsPlace = false;
      waiter.places.cancelRejoin(waiter.reservation);
      this.#placePending = false;
    }
    waiter.stopKeepAlive?.();
    if (this.waiting.length === 0) clearTimeout(this.#timer);
    else if (pump) this.pump();
  }

  /** The head's turn: the start is taken now, so the window counts real starts. */
  #start(head: Waiter): void {
    this.window.take(performance.now());
    this.waiting.shift();
    // No longer waiting from here: a stop that comes before the run starts leaves it to run.
    allWaiting.delete(head);
    head.stopKeepAlive?.();
    head.stopKeepAlive = undefined;
    head.log.debug({ waitedMs: Math.round(performance.now() - head.since) }, 'rate limit: the job may start');
    head.resolve(true);
  }

  #donorFor(head: Waiter): Waiter | undefined {
    for (let i = this.waiting.length - 1; i > 0; i -= 1) {
      const each = this.waiting[i] as Waiter;
      if (each.holdsPlace && each.places === head.places) return each;
    }
    return undefined;
  }

  #arm(waitMs: number): void {
    clearTimeout(this.#timer);
    // A timer fires up to a millisecond early; ceil keeps the window's promise.
    this.#timer = setTimeout(() => this.pump(), Math.ceil(waitMs));
    this.#timer.unref();
  }
}

/** The most waiting jobs of one task that give their run place back (see {@link waitingBound}). */
export const MAX_WAITING_OUTSIDE = 1_000;

/**
 * How many of a task's waiting jobs give their run place back: one window's starts (`max`) or a full
 * set of places (`concurrency`), whichever is more, so that a burst the limit will let through soon
 * does not hold the places other tasks need. Bounded, since each one is a job held and touched.
 */
export function waitingBound(max: number, concurrency: number): number {
  return Math.min(MAX_WAITING_OUTSIDE, Math.max(max, concurrency));
}

/** The limiters of this process, one per registered task (a task registered again gets a new one). */
const limiters = new WeakMap<RegisteredTask, TaskLimiter>();
/** Every waiting job of this process, so that a runner's stop can give its own back. */
const allWaiting = new Map<Waiter, TaskLimiter>();

function limiterOf(task: RegisteredTask, limit: RateLimit): TaskLimiter {
  let limiter = limiters.get(task);
  if (limiter === undefined) {
    limiter = new TaskLimiter(limit);
    limiters.set(task, limiter);
  }
  return limiter;
}

/** What {@link throttle} needs of the job being processed. */
export interface ThrottleInput {
  readonly ctx: JobContext;
  readonly reservation: Reservation;
  readonly task: RegisteredTask;
  readonly limit: RateLimit;
  readonly stats: Pick<JobStatsCache, 'require'>;
  /** The job's logger (`{ tube, jobId, task }` bound). */
  readonly log: Logger;
}

/**
 * Called before a rate-limited task's job runs. Undefined when it may start now (the common case: no
 * promise, no await). Otherwise a promise of the job's stats once it may start (passed to the run, which
 * keeps the TTR alive from there), or of undefined when the job is no longer this worker's to run:
 * given back by a stop, or gone (already logged).
 */
export function throttle(input: ThrottleInput): Promise<JobStats | undefined> | undefined {
  const { ctx, reservation, task, limit, stats, log } = input;
  const limiter = limiterOf(task, limit);
  // Oldest first: a job that finds others waiting waits behind them, even if a start is free.
  if (limiter.waiting.length === 0 && limiter.window.take(performance.now()) === 0) return undefined;
  const places = reservation.places ?? IN_PLACE;
  const outside = places.concurrency > 0 && limiter.outside < waitingBound(limit.max, places.concurrency);
  const waiter = new Waiter(reservation, places, ctx, log, !outside);
  if (outside) {
    limiter.outside += 1;
    places.leave(reservation);
  }
  limiter.waiting.push(waiter);
  allWaiting.set(waiter, limiter);
  const waitMs = Math.round(limiter.window.waitMs(performance.now()));
  log.debug({ waitMs, holdsPlace: waiter.holdsPlace, waiting: limiter.waiting.length }, 'rate limit: the job waits for its turn');
  if (ctx.listens('job:throttled')) ctx.emit('job:throttled', { ...reservation.event, waitMs, holdsPlace: waiter.holdsPlace });
  // The TTR is read once (it is needed to keep the job alive) while the job waits, then handed to the run.
  const ready = stats.require(ctx.logger).then((counters) => {
    if (counters === undefined) {
      // Vanished, or the read failed and the connection was dropped: the job is not ours any more.
      finish(waiter);
      waiter.resolve(GIVEN_BACK);
      return undefined;
    }
    reservation.ttrMs = counters.ttrSeconds * 1000;
    if (allWaiting.has(waiter)) waiter.stopKeepAlive = keepAliveWhileWaiting(reservation, log);
    return counters;
  });
  limiter.pump();
  return waiter.granted.then((go) => {
    if (!go) return undefined;
    return ready.then((counters) => {
      if (counters !== undefined) touchIfStale(reservation, log);
      return counters;
    });
  });
}

function finish(waiter: Waiter): void {
  const limiter = allWaiting.get(waiter);
  allWaiting.delete(waiter);
  limiter?.remove(waiter);
}

/**
 * A stop: every job of `places` still waiting for its turn is given back now (its reservation marked so,
 * its signal aborted), without waiting for the grace period: it never ran. Closing its connection puts
 * it back to ready with its priority and no release counted; the engine closes a connection that holds
 * nothing else at once, the others when the stop closes every connection.
 */
export function giveBackWaiting(places: RunPlaces, log: Logger): void {
  const mine = [...allWaiting].filter(([waiter]) => waiter.places === places);
  for (const [waiter, limiter] of mine) {
    allWaiting.delete(waiter);
    limiter.remove(waiter, false);
  }
  // The other runners' jobs (another Worker of this process) may take the turns these leave.
  for (const limiter of new Set(mine.map(([, limiter]) => limiter))) limiter.pump();
  for (const [waiter] of mine) {
    waiter.reservation.giveBack(new Error('the worker is stopping; the job was waiting for its rate limit'));
    log.info({ ...waiter.reservation.event }, 'stopping: giving a job that waited for its rate limit back to beanstalkd');
    waiter.ctx.emit('job:released', { ...waiter.reservation.event, reason: 'stop' });
    waiter.resolve(GIVEN_BACK);
  }
}

function keepAliveWhileWaiting(reservation: Reservation, log: Logger): () => void {
  return keepAlive({
    reservation,
    touch: () => touch(reservation),
    log,
    onLate: (lateByMs) => log.warn({ lateByMs }, 'a job waiting for its rate limit was touched after its TTR ran out'),
  });
}

/**
 * At its turn, a job last touched more than a quarter of its TTR ago is touched again: the run's own
 * keep-alive first touches half a TTR after the start, which added to the wait's last interval could
 * come too close to the TTR.
 */
function touchIfStale(reservation: Reservation, log: Logger): void {
  const ttrMs = reservation.ttrMs ?? 1_000;
  if (performance.now() - reservation.lastResetAt <= ttrMs / 4) return;
  touch(reservation).catch((error: unknown) => log.warn({ err: error }, 'touch failed'));
}

async function touch(reservation: Reservation): Promise<void> {
  const sentAt = performance.now();
  await reservation.connection.touch(reservation.id);
  if (sentAt > reservation.lastResetAt) reservation.lastResetAt = sentAt;
}
