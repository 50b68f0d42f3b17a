/**
 * What the soak's parts (the orchestrator, the producers and the tasks inside the workers) must agree on:
 * tube names, environment variable names, the record formats and the seeded choices. No I/O here, so
 * each child process can import it cheaply.
 */

/** The tubes the workers serve, one per task. */
export const TUBES = { fast: 'soak_fast', flaky: 'soak_flaky', poison: 'soak_poison' } as const;
/** Where `--dead-letter` moves a job that used its last kick. No worker watches it. */
export const DEAD_LETTER_TUBE = 'soak_dead';
/** The kinds of job, named like the tubes they go to. */
export type JobKind = keyof typeof TUBES;
/** Every work tube, in a fixed order. */
export const WORK_TUBES: readonly string[] = Object.values(TUBES);

/** Environment of the tasks and producers. */
export const ENV = {
  /** The directory the tasks write their run records to (one file per process). */
  runsDir: 'SOAK_RUNS_DIR',
  /** The run's seed, so a task's "random" failures are the same for the same id and attempt. */
  seed: 'SOAK_SEED',
  /** A producer's index (0 or 1): it makes the ids of the two producers disjoint. */
  producerIndex: 'SOAK_PRODUCER_INDEX',
  /** Puts per second for one producer. */
  producerRate: 'SOAK_PRODUCER_RATE',
  /** The file a producer writes its put records to. */
  producerOut: 'SOAK_PRODUCER_OUT',
} as const;

/** The kwargs of every soak job: a sequence id unique across the whole run. */
export interface SoakKwargs {
  readonly id: number;
}

/** One line of a task's run log: a run of job `id`, as the task saw it. */
export interface RunRecord {
  readonly id: number;
  readonly kind: JobKind;
  /** `ctx.attempt()`: 1 + the job's releases, as beanstalkd counts them (a restart resets them). */
  readonly attempt: number;
  readonly pid: number;
  /** Epoch milliseconds. */
  readonly at: number;
  /** True when the task returned (the worker then deletes the job), false when it threw. */
  readonly ok: boolean;
}

/** What happened to one put, as its producer saw it. */
export type PutOutcome = 'accepted' | 'rejected' | 'unknown';

/** One line of a producer's put log. */
export interface PutRecord {
  readonly id: number;
  readonly kind: JobKind;
  readonly outcome: PutOutcome;
  /** Epoch milliseconds when the put settled. */
  readonly at: number;
  /** The error's class name, for rejected and unknown puts; `pending` for a put that never settled. */
  readonly error?: string;
  readonly message?: string;
}

/** Ids of producer `index` start here, so the two producers never share one. */
export const ID_BLOCK = 100_000_000;

/** A 32-bit hash of a few integers (FNV-1a over their bytes, then a final mix). */
export function hash32(...values: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const value of values) {
    let v = value >>> 0;
    for (let i = 0; i < 4; i++) {
      h ^= v & 0xff;
      h = Math.imul(h, 0x01000193);
      v >>>= 8;
    }
    const high = Math.floor(value / 2 ** 32) >>> 0;
    h ^= high;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** A number in [0, 1) fixed by the seed and the values: the same question always gets the same answer. */
export function chance(seed: number, ...values: readonly number[]): number {
  return hash32(seed, ...values) / 2 ** 32;
}

/** Share of poison jobs, and of flaky ones; the rest succeed at once. */
export const MIX = { poison: 0.01, flaky: 0.1 } as const;
/** How often a flaky job's run fails. */
export const FLAKY_FAILURE_RATE = 0.05;

/** The kind of job `id` is, fixed by the seed so that the producer and the counter agree. */
export function kindOf(seed: number, id: number): JobKind {
  const x = chance(seed, id, 0x6b696e64);
  if (x < MIX.poison) return 'poison';
  if (x < MIX.poison + MIX.flaky) return 'flaky';
  return 'fast';
}

/** A small seeded generator (mulberry32) for the chaos schedule. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
