/**
 * The latest progress of each running job of a worker process, for `GET /progress` next to its
 * `/metrics` (and, under `--processes`, merged by the supervisor from its children over IPC).
 *
 * What it costs, and why it is shaped so: only `job:progress` is listened to all the time, and the worker
 * emits it only from `ctx.progress`, so a job that never reports progress pays nothing. The entry of a
 * job must go when the job ends; the end events (`job:completed`, `released`, `buried`, `deleted`) are
 * listened to only while the board holds an entry, so a process whose jobs report no progress listens
 * to none of them, and one that does pays one map lookup per job end while a reporting job runs.
 * Values are kept as reported (a reference, no copy per report) and serialised only when the board is
 * read, each cut to {@link PROGRESS_DEFAULTS.maxValueBytes} of JSON; the board holds at most
 * {@link PROGRESS_DEFAULTS.maxJobs} jobs, the least recently updated dropped first.
 */
import type { EventEmitter } from 'node:events';
import type { JobEvent } from '../worker/events.js';

/** Every bound of the board, in one place. */
export const PROGRESS_DEFAULTS = Object.freeze({
  /** Jobs kept at most: far above a process's concurrency, so only a leak of entries reaches it. */
  maxJobs: 1_000,
  /** A value's JSON is cut to this many bytes (a progress report is a number or a small object). */
  maxValueBytes: 1_024,
});

/** One running job's latest progress, as `GET /progress` serves it. Its text is job data: untrusted. */
export interface ProgressEntry {
  readonly jobId: string;
  readonly tube: string | null;
  readonly task: string | null;
  /**
   * The value reported, as JSON keeps it; when its JSON is longer than the cap, the first
   * {@link PROGRESS_DEFAULTS.maxValueBytes} bytes of that JSON as a string, and `truncated` is true.
   * A value JSON cannot carry (a BigInt, a cycle) reads as null with `truncated` true.
   */
  readonly value: unknown;
  readonly truncated: boolean;
  /** When it was reported, ISO 8601. */
  readonly at: string;
}

/** What `GET /progress` answers. */
export interface ProgressReport {
  /** Oldest report first. */
  readonly jobs: readonly ProgressEntry[];
}

interface Held {
  readonly event: JobEvent;
  value: unknown;
  at: number;
}

/** The events that end a job's run on this worker. */
const END_EVENTS = ['job:completed', 'job:released', 'job:buried', 'job:deleted'] as const;

/** Options of {@link ProgressBoard}. */
export interface ProgressBoardOptions {
  /** @defaultValue PROGRESS_DEFAULTS.maxJobs */
  readonly maxJobs?: number;
  /** @defaultValue PROGRESS_DEFAULTS.maxValueBytes */
  readonly maxValueBytes?: number;
}

/** The latest progress per running job of the workers attached. */
export class ProgressBoard {
  readonly #held = new Map<string, Held>();
  readonly #workers = new Set<EventEmitter>();
  readonly #maxJobs: number;
  readonly #maxValueBytes: number;
  #listeningForEnds = false;
  readonly #onProgress = (event: JobEvent & { readonly value: unknown }): void => this.#report(event);
  readonly #onEnd = (event: JobEvent): void => this.#end(event.jobId);

  constructor(options: ProgressBoardOptions = {}) {
    this.#maxJobs = options.maxJobs ?? PROGRESS_DEFAULTS.maxJobs;
    this.#maxValueBytes = options.maxValueBytes ?? PROGRESS_DEFAULTS.maxValueBytes;
  }

  /** Follows a worker's progress reports; returns the function that stops (its entries go). */
  attach(worker: { on: EventEmitter['on']; off: EventEmitter['off'] }): () => void {
    const emitter = worker as EventEmitter;
    this.#workers.add(emitter);
    emitter.on('job:progress', this.#onProgress);
    if (this.#listeningForEnds) for (const name of END_EVENTS) emitter.on(name, this.#onEnd);
    return () => {
      emitter.off('job:progress', this.#onProgress);
      for (const name of END_EVENTS) emitter.off(name, this.#onEnd);
      this.#workers.delete(emitter);
      if (this.#workers.size === 0) {
        this.#held.clear();
        this.#listeningForEnds = false;
      }
    };
  }

  /** Jobs held now. */
  get size(): number {
    return this.#held.size;
  }

  /** Every running job's latest progress, oldest report first, values serialised and capped. */
  snapshot(): ProgressReport {
    return {
      jobs: [...this.#held.values()].map((held) => ({
        jobId: held.event.jobId,
        tube: held.event.tube ?? null,
        task: held.event.task ?? null,
        ...capValue(held.value, this.#maxValueBytes),
        at: new Date(held.at).toISOString(),
      })),
    };
  }

  #report(event: JobEvent & { readonly value: unknown }): void {
    const held = this.#held.get(event.jobId);
    if (held) {
      // Moved to the end: the map's order is the order of the latest reports, so the bound drops the stalest.
      this.#held.delete(event.jobId);
      held.value = event.value;
      held.at = Date.now();
      this.#held.set(event.jobId, held);
      return;
    }
    this.#held.set(event.jobId, { event: { jobId: event.jobId, tube: event.tube, task: event.task }, value: event.value, at: Date.now() });
    if (this.#held.size > this.#maxJobs) this.#held.delete(this.#held.keys().next().value as string);
    if (!this.#listeningForEnds) this.#listenForEnds(true);
  }

  #end(jobId: string): void {
    if (this.#held.delete(jobId) && this.#held.size === 0) this.#listenForEnds(false);
  }

  #listenForEnds(on: boolean): void {
    this.#listeningForEnds = on;
    for (const worker of this.#workers) {
      for (const name of END_EVENTS) {
        if (on) worker.on(name, this.#onEnd);
        else worker.off(name, this.#onEnd);
      }
    }
  }
}

/** A value as {@link ProgressEntry} carries it: itself when its JSON fits, else that JSON cut. */
export function capValue(value: unknown, maxBytes: number): { value: unknown; truncated: boolean } {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return { value: null, truncated: true };
  }
  if (json === undefined) return { value: null, truncated: false };
  if (Buffer.byteLength(json) <= maxBytes) return { value: JSON.parse(json) as unknown, truncated: false };
  // Cut at a byte bound; a character split there becomes U+FFFD, which is still text.
  return { value: Buffer.from(json).subarray(0, maxBytes).toString('utf8'), truncated: true };
}
