/**
 * The child side of `bsworker --processes`: how a worker knows a supervisor forked it, and the recycle
 * limits (`--max-jobs`, `--max-memory-mb`) after which it stops gracefully so that the supervisor can
 * replace it with a fresh process. The messages it exchanges with the supervisor are in `ipc.ts`.
 */
import type { Worker } from '../worker/worker.js';

/** The environment variable through which the supervisor tells a child its slot number. */
export const CHILD_INDEX_ENV = 'BSWORKER_CHILD_INDEX';

/**
 * The slot number when this process was forked by a `bsworker --processes` supervisor, else undefined.
 * Both conditions are needed: the variable alone could be inherited by anything a task spawns, and an
 * IPC channel alone only says that some Node program forked us.
 */
export function supervisedChildIndex(): number | undefined {
  const value = process.env[CHILD_INDEX_ENV];
  if (process.send === undefined || value === undefined || !/^[0-9]+$/.test(value)) return undefined;
  return Number(value);
}

/** When a worker process should stop so that a fresh one takes its place. */
export interface RecycleLimits {
  /** Stop after this many finished jobs (completed, failed, buried or released). */
  readonly maxJobs?: number;
  /** Stop once the resident set size, read after each finished job, exceeds this many MiB. */
  readonly maxMemoryMb?: number;
}

/** Which limit was reached, with the numbers for the log line. */
export interface LimitReached {
  readonly limit: 'max-jobs' | 'max-memory';
  /** Jobs finished by this process so far. */
  readonly jobs: number;
  /** The resident set size when the limit was found reached, in MiB. */
  readonly rssMb: number;
}

const MIB = 1024 * 1024;

/**
 * Counts the jobs `worker` finishes and calls `onReached` once, after the job that reaches a limit.
 * Each finished job ends in exactly one of `job:deleted`, `job:buried` or `job:released`; releases that
 * happen because the worker is being stopped (`isStopping()`) are not finished jobs and are not counted.
 *
 * Memory is only read between jobs: a job's own peak is gone by then, and what is left is what the
 * process keeps (leaks, caches, heap that V8 has not given back), which is what recycling is for.
 *
 * @param rssBytes reads the resident set size; replaceable for tests
 */
export function watchRecycleLimits(
  worker: Worker,
  limits: RecycleLimits,
  isStopping: () => boolean,
  onReached: (reached: LimitReached) => void,
  rssBytes: () => number = () => process.memoryUsage.rss(),
): void {
  const { maxJobs, maxMemoryMb } = limits;
  if (maxJobs === undefined && maxMemoryMb === undefined) return;
  let jobs = 0;
  let reached = false;
  const onFinished = (): void => {
    if (isStopping()) return;
    jobs += 1;
    if (reached) return;
    const rss = rssBytes();
    const limit =
      maxJobs !== undefined && jobs >= maxJobs
        ? 'max-jobs'
        : maxMemoryMb !== undefined && rss > maxMemoryMb * MIB
          ? 'max-memory'
          : undefined;
    if (limit === undefined) return;
    reached = true;
    onReached({ limit, jobs, rssMb: Math.round(rss / MIB) });
  };
  worker.on('job:deleted', onFinished);
  worker.on('job:buried', onFinished);
  worker.on('job:released', onFinished);
}
