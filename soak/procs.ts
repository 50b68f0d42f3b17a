/**
 * The soak's child processes. Every process it starts goes through {@link Processes}, which keeps their
 * pids and, at the end or on any failure, kills each one by pid. The children of a `--processes`
 * supervisor were not spawned by the soak, so their pids are read from /proc as they appear and are
 * killed by pid too (after checking the pid still runs bsworker, since a pid can be reused).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';

/** How a child ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A started child process. */
export interface Proc {
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** Set once the child has exited. */
  exit: Exit | undefined;
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Resolves with `promise`'s value, or with undefined after `ms`. The timer is cleared either way, so a
 * long bound never keeps the soak's process alive after it is done.
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` to `pid`; a process that is already gone is not an error. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** The direct children of `pid` (Linux /proc; empty elsewhere or when it has exited). */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const word of text.split(/\s+/)) if (word !== '') pids.push(Number(word));
    }
  } catch {
    // Gone, or not Linux: no children to report.
  }
  return pids;
}

/** True when `pid` is alive and its command line mentions `needle`. */
function runs(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
  } catch {
    return false;
  }
}

/** Every child the soak started, and the grandchildren it has seen. */
export class Processes {
  readonly #children = new Set<ChildProcess>();
  readonly #grandchildren = new Set<number>();

  constructor() {
    // Last resort: even a soak that crashes must not leave workers or servers behind.
    process.once('exit', () => this.killAll());
  }

  /** Starts `command`; its stdout and stderr go to `logFile` (appended), or are ignored. */
  spawn(command: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; cwd: string; logFile?: string }): Proc {
    const fd = options.logFile === undefined ? 'ignore' : openSync(options.logFile, 'a');
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`soak: could not start ${command} ${args.join(' ')}`);
    this.#children.add(child);
    const proc: Proc = {
      pid: child.pid,
      exit: undefined,
      exited: new Promise<Exit>((resolve) => {
        child.once('exit', (code, signal) => {
          proc.exit = { code, signal };
          this.#children.delete(child);
          resolve(proc.exit);
        });
      }),
    };
    return proc;
  }

  /** Remembers the current children of `pid` (a supervisor's workers) so the end can kill them by pid. */
  noteChildrenOf(pid: number): number[] {
    const pids = childPids(pid);
    for (const child of pids) this.#grandchildren.add(child);
    return pids;
  }

  /** SIGTERM, then SIGKILL if the process has not exited after `graceMs`. */
  async stop(proc: Proc, graceMs: number): Promise<Exit> {
    if (proc.exit) return proc.exit;
    signalPid(proc.pid, 'SIGCONT');
    signalPid(proc.pid, 'SIGTERM');
    const exit = await within(proc.exited, graceMs);
    if (exit) return exit;
    signalPid(proc.pid, 'SIGKILL');
    return proc.exited;
  }

  /** SIGKILL to every child still running and to every remembered bsworker grandchild, by pid. */
  killAll(): void {
    for (const child of this.#children) if (child.pid !== undefined) signalPid(child.pid, 'SIGKILL');
    for (const pid of this.#grandchildren) if (runs(pid, 'bsworker')) signalPid(pid, 'SIGKILL');
  }
}
