/**
 * A pool of task threads (node:worker_threads). With it, task code runs off the worker's own thread, so
 * a CPU-bound task cannot hold back the TTR keep-alive, the command deadlines or the other slots: the
 * worker's thread keeps touching the job while the task computes. A thread runs one task at a time;
 * runs wait in order when every thread is busy.
 *
 * A thread that exits while it runs a task (process.exit, an out-of-memory kill, a crash) fails that
 * run and is replaced. A run aborted by its timeout or a forced stop whose thread does not finish at
 * once has its thread terminated, which is the one way to stop code that never yields.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { JobStats } from '../../beanstalk/types.js';
import type { Logger } from '../../logging/logger.js';
import { backoffDelay } from '../../util/backoff.js';
import type { ErrorData, FromTaskThread, TaskThreadData, ToTaskThread } from './protocol.js';

/** Options of {@link TaskThreadPool}. */
export interface TaskThreadPoolOptions {
  /** How many threads. */
  readonly size: number;
  /** The jobs directory each thread imports. */
  readonly jobsDir: string;
  readonly logger: Logger;
}

/** One run as the pool's caller describes it. */
export interface ThreadRun {
  readonly tube: string;
  readonly name: string;
  readonly jobId: string;
  readonly kwargs: Record<string, unknown>;
  /** The envelope's `meta`, for `ctx.meta`. */
  readonly meta?: Record<string, unknown>;
  /** The return value is needed (a chain, a result): the thread sends it back. */
  readonly wantsValue?: boolean;
  /** Takes the task's `ctx.progress(value)` reports. */
  readonly progress?: (value: unknown) => void;
  /** Answers the task's `ctx.stats()`. */
  readonly stats: () => Promise<JobStats>;
  /** Answers the task's `ctx.touch()`. */
  readonly touch: () => Promise<void>;
}

/** A run the pool has accepted: its outcome, and a way to abort it. */
export interface ThreadRunHandle {
  /** Resolves to the task's return value (when {@link ThreadRun.wantsValue}) when it ended; rejects with its failure. */
  readonly done: Promise<unknown>;
  /** Aborts the run: the task's signal fires, and the thread is replaced if the task does not end at once. */
  abort(reason: Error): void;
}

/** How long an aborted run may take to end by itself before its thread is terminated. */
const ABORT_GRACE_MS = 1_000;

interface Active {
  readonly id: number;
  readonly run: ThreadRun;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

/** One thread and the run it holds. */
class TaskThread {
  readonly thread: Thread;
  readonly ready: Promise<void>;
  active: Active | undefined;

  constructor(
    data: TaskThreadData,
    private readonly onExit: (thread: TaskThread, code: number) => void,
    private readonly onMessage: (thread: TaskThread, message: FromTaskThread) => void,
  ) {
    this.thread = startThread(data);
    this.ready = new Promise<void>((resolve, reject) => {
      const first = (message: FromTaskThread): void => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'load-failed') reject(errorOf(message.error));
        else return;
        this.thread.off('message', first);
      };
      this.thread.on('message', first);
      this.thread.once('error', reject);
      this.thread.once('exit', (code) => reject(new Error(`a task thread exited with code ${code} before it was ready`)));
    });
    this.ready.catch(() => undefined);
    this.thread.on('message', (message: FromTaskThread) => this.onMessage(this, message));
    this.thread.on('error', () => undefined);
    this.thread.once('exit', (code) => this.onExit(this, code));
  }

  post(message: ToTaskThread): void {
    this.thread.postMessage(message);
  }
}

/** Runs tasks in threads. Create it with {@link TaskThreadPool.start}. */
export class TaskThreadPool {
  readonly #options: TaskThreadPoolOptions;
  readonly #threads = new Set<TaskThread>();
  readonly #idle: TaskThread[] = [];
  readonly #queue: Active[] = [];
  #nextRun = 1;
  #closed = false;
  /** Failed attempts in a row to replace a thread, and the last one's error. */
  #respawnFailures = 0;
  #lastSpawnError: Error | undefined;

  private constructor(options: TaskThreadPoolOptions) {
    this.#options = options;
  }

  /** Starts `size` threads and waits until each has imported the jobs; rejects when one cannot. */
  static async start(options: TaskThreadPoolOptions): Promise<TaskThreadPool> {
    const pool = new TaskThreadPool(options);
    try {
      await Promise.all(Array.from({ length: options.size }, () => pool.#spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Starts one run; it waits for a free thread. */
  run(run: ThreadRun): ThreadRunHandle {
    let resolve!: (value: unknown) => void;
    let reject!: (error: Error) => void;
    const done = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const active: Active = { id: this.#nextRun++, run, resolve, reject };
    if (this.#closed) reject(new Error('the task thread pool is closed'));
    else if (this.#threads.size === 0 && this.#respawnFailures > 0) {
      reject(new Error(`no task thread is running (${this.#lastSpawnError?.message ?? 'they exited'})`));
    } else {
      this.#queue.push(active);
      this.#dispatch();
    }
    return { done, abort: (reason) => this.#abort(active, reason) };
  }

  /** Terminates every thread; runs still waiting fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiting of this.#queue.splice(0)) waiting.reject(new Error('the task thread pool closed'));
    await Promise.all([...this.#threads].map((t) => t.thread.terminate()));
  }

  async #spawn(): Promise<void> {
    const data: TaskThreadData = { jobsDir: this.#options.jobsDir, logLevel: this.#options.logger.level };
    const thread = new TaskThread(
      data,
      (t, code) => this.#exited(t, code),
      (t, message) => this.#message(t, message),
    );
    this.#threads.add(thread);
    try {
      await thread.ready;
    } catch (error) {
      // A thread that could not import the jobs is of no use: end it, and let the caller decide.
      this.#threads.delete(thread);
      void thread.thread.terminate();
      throw error;
    }
    this.#respawnFailures = 0;
    if (this.#closed) return;
    this.#idle.push(thread);
    this.#dispatch();
  }

  /**
   * Replaces a thread that exited, retrying with backoff while the jobs cannot be imported (a deploy
   * in progress). While no thread is alive, runs fail at once instead of waiting for ever: their jobs
   * are then retried or buried like any failure, and the slots stay free.
   */
  #respawn(): void {
    if (this.#closed) return;
    this.#spawn().catch((error: unknown) => {
      this.#respawnFailures += 1;
      this.#lastSpawnError = error instanceof Error ? error : new Error(String(error));
      const delayMs = Math.round(backoffDelay(this.#respawnFailures, { initial: 500, max: 30_000, jitter: 0.5 }));
      this.#options.logger.error({ err: error, delayMs }, 'could not start a task thread; trying again');
      if (this.#threads.size === 0) this.#failWaiting();
      setTimeout(() => this.#respawn(), delayMs).unref();
    });
  }

  /** Fails every waiting run: no thread is alive to take it. */
  #failWaiting(): void {
    const reason = `no task thread is running (${this.#lastSpawnError?.message ?? 'they exited'})`;
    for (const waiting of this.#queue.splice(0)) waiting.reject(new Error(reason));
  }

  #dispatch(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const thread = this.#idle.shift() as TaskThread;
      const active = this.#queue.shift() as Active;
      thread.active = active;
      const { tube, name, jobId, kwargs, meta, wantsValue } = active.run;
      thread.post({ type: 'run', run: active.id, tube, name, jobId, kwargs, meta, wantsValue });
    }
  }

  #message(thread: TaskThread, message: FromTaskThread): void {
    const active = thread.active;
    if (message.type === 'ready' || message.type === 'load-failed' || !active || message.run !== active.id) return;
    if (message.type === 'done') {
      thread.active = undefined;
      if (message.error) active.reject(errorOf(message.error));
      else active.resolve(message.value);
      if (!this.#closed) {
        this.#idle.push(thread);
        this.#dispatch();
      }
      return;
    }
    if (message.type === 'progress') {
      active.run.progress?.(message.value);
      return;
    }
    const { run: id, request } = message;
    if (message.type === 'stats') {
      active.run.stats().then(
        (stats) => thread.post({ type: 'stats', run: id, request, stats }),
        (error: unknown) => thread.post({ type: 'stats', run: id, request, error: dataOf(error) }),
      );
    } else {
      active.run.touch().then(
        () => thread.post({ type: 'touched', run: id, request }),
        (error: unknown) => thread.post({ type: 'touched', run: id, request, error: dataOf(error) }),
      );
    }
  }

  #abort(active: Active, reason: Error): void {
    const index = this.#queue.indexOf(active);
    if (index >= 0) {
      this.#queue.splice(index, 1);
      active.reject(reason);
      return;
    }
    const thread = [...this.#threads].find((t) => t.active === active);
    if (!thread) return;
    thread.post({ type: 'abort', run: active.id, reason: dataOf(reason) });
    // Code that never yields never sees its signal: terminate its thread if it has not ended by then.
    setTimeout(() => {
      if (thread.active !== active) return;
      this.#options.logger.warn({ jobId: active.run.jobId }, 'the aborted task did not end; terminating its thread');
      void thread.thread.terminate();
    }, ABORT_GRACE_MS).unref();
  }

  #exited(thread: TaskThread, code: number): void {
    // A thread ended by #spawn (its jobs did not load) is no longer counted: #respawn handles it.
    if (!this.#threads.delete(thread)) return;
    const idle = this.#idle.indexOf(thread);
    if (idle >= 0) this.#idle.splice(idle, 1);
    const active = thread.active;
    thread.active = undefined;
    active?.reject(new Error(`the thread running the task exited (code ${code})`));
    if (this.#closed) return;
    this.#options.logger.warn({ code }, 'a task thread exited; starting another');
    this.#respawn();
  }
}

/**
 * Starts a thread on the entry: the compiled `.js` beside this file, or, when this file runs from its
 * `.ts` source through tsx (the tests), the `.ts` entry behind a bootstrap that registers tsx in the
 * thread first (a thread does not inherit the process's loader hooks on Node 20).
 */
function startThread(data: TaskThreadData): Thread {
  if (!import.meta.url.endsWith('.ts')) return new Thread(new URL('./entry.js', import.meta.url), { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./entry.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Thread(bootstrap, { eval: true, workerData: data });
}

function errorOf(data: ErrorData): Error {
  const error = new Error(data.message);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  // Seen by isUnrecoverable, which reads a brand rather than the class (see tasks/errors.ts).
  if (data.unrecoverable) Object.defineProperty(error, Symbol.for('bsworker.UnrecoverableError'), { value: true });
  return error;
}

function dataOf(error: unknown): ErrorData {
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: e.name, message: e.message, stack: e.stack };
}
