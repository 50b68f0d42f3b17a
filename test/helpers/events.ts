// Awaiting worker events in tests, with a bound so a missing event fails the test instead of hanging it;
// and capturing what a logger writes.
import type { EventEmitter } from 'node:events';

/**
 * Resolves with the first `event` whose payload satisfies `match`; rejects after `timeoutMs`.
 */
export function nextEvent<T>(
  emitter: EventEmitter,
  event: string,
  match: (payload: T) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: T): void => {
      if (!match(payload)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(payload);
    };
    emitter.on(event, listener);
  });
}

/** Collects the lines a pino logger writes, parsed, for assertions on log output. */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly stream = {
    write: (chunk: string): boolean => {
      for (const line of chunk.split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
      return true;
    },
  };

  /** The lines whose `msg` matches. */
  find(msg: RegExp): Record<string, unknown>[] {
    return this.lines.filter((line) => typeof line.msg === 'string' && msg.test(line.msg));
  }
}

/** One event as an {@link EventRecorder} recorded it. */
export interface RecordedEvent<T, N extends string = string> {
  readonly name: N;
  readonly payload: T;
}

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  /**
   * How long {@link EventRecorder.waitFor} waits when the call gives no bound of its own.
   * @defaultValue 10_000 ms, for a real server; a unit test against a fake can afford a tighter bound.
   */
  readonly timeoutMs?: number;
}

/**
 * Records every event of the given names from now on, so a test can wait for an event that may already
 * have happened (a worker can finish a job before `put()` resolves), and can assert afterwards on which
 * events came, in what order. `N` narrows the event names a test may ask for, so a misspelt name is a
 * type error instead of a wait that times out.
 */
export class EventRecorder<T extends { jobId?: string }, N extends string = string> {
  readonly #seen: RecordedEvent<T, N>[] = [];
  readonly #waiters = new Set<{ event: N; match: (payload: T) => boolean; resolve: (payload: T) => void }>();
  readonly #timeoutMs: number;

  constructor(emitter: EventEmitter, events: readonly N[], options: EventRecorderOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    for (const event of events) {
      emitter.on(event, (payload: T) => {
        this.#seen.push({ name: event, payload });
        for (const waiter of this.#waiters) {
          if (waiter.event === event && waiter.match(payload)) {
            this.#waiters.delete(waiter);
            waiter.resolve(payload);
          }
        }
      });
    }
  }

  /** Every event recorded so far, oldest first. */
  get events(): readonly RecordedEvent<T, N>[] {
    return this.#seen;
  }

  /** The names of the events recorded so far, oldest first. */
  names(): N[] {
    return this.#seen.map((entry) => entry.name);
  }

  /**
   * Resolves with the first recorded or future `event` matching `match`; rejects after `timeoutMs`, with
   * the events recorded so far in the message, so a missing event fails the test (and says what came
   * instead) rather than hanging it.
   */
  waitFor(event: N, match: (payload: T) => boolean = () => true, timeoutMs = this.#timeoutMs): Promise<T> {
    const past = this.#seen.find((entry) => entry.name === event && match(entry.payload));
    if (past) return Promise.resolve(past.payload);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        event,
        match,
        resolve: (payload: T) => {
          clearTimeout(timer);
          resolve(payload);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no ${event} event within ${timeoutMs} ms (events so far: ${this.names().join(', ') || 'none'})`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** How many times `event` has been recorded for `jobId`. */
  count(event: N, jobId: string): number {
    return this.#seen.filter((entry) => entry.name === event && entry.payload.jobId === jobId).length;
  }
}
