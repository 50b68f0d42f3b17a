// Awaiting worker events in tests, with a bound so a missing event fails the test instead of hanging it.
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

/**
 * Records every event of the given names from now on, so a test can wait for an event that may already
 * have happened (a worker can finish a job before `put()` resolves).
 */
export class EventRecorder<T extends { jobId?: string }> {
  readonly #seen: { event: string; payload: T }[] = [];
  readonly #waiters = new Set<{ event: string; match: (payload: T) => boolean; resolve: (payload: T) => void }>();

  constructor(emitter: EventEmitter, events: readonly string[]) {
    for (const event of events) {
      emitter.on(event, (payload: T) => {
        this.#seen.push({ event, payload });
        for (const waiter of this.#waiters) {
          if (waiter.event === event && waiter.match(payload)) {
            this.#waiters.delete(waiter);
            waiter.resolve(payload);
          }
        }
      });
    }
  }

  /** Resolves with the first recorded or future `event` matching `match`; rejects after `timeoutMs`. */
  waitFor(event: string, match: (payload: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    const past = this.#seen.find((entry) => entry.event === event && match(entry.payload));
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
        reject(new Error(`no ${event} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** How many times `event` has been recorded for `jobId`. */
  count(event: string, jobId: string): number {
    return this.#seen.filter((entry) => entry.event === event && entry.payload.jobId === jobId).length;
  }
}
