/**
 * Every process the bench starts (worker CLIs, fivebeans' worker) goes through here, so that all of them
 * are stopped when a scenario throws, when the run is interrupted, and, as a last resort, when the bench
 * process exits. Processes are only ever signalled by the pid this module got from spawn.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** How a child ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A started child: its pid, its exit, and the tail of its stderr for error messages. */
export interface Spawned {
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** Set once the child has exited. */
  readonly exit: Exit | undefined;
  /** What the child wrote on stderr (bounded), to explain a failure. */
  stderr(): string;
  /** The child's stdin and stdout when `options.stdio` made them pipes (a child driven by lines). */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** Sends SIGTERM and waits for the exit; SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<Exit>;
}

const STDERR_LIMIT = 16 * 1024;
/** A worker stops within its own grace period; after this the bench stops waiting. */
const DEFAULT_STOP_GRACE_MS = 10_000;

/** The bench's child processes. */
export class Children {
  readonly #running = new Set<ChildProcess>();
  readonly #spawned = new Set<Spawned>();

  constructor() {
    // Last resort: a bench that dies abruptly must not leave workers reserving from a dead server.
    process.once('exit', () => {
      for (const child of this.#running) child.kill('SIGKILL');
    });
  }

  /**
   * Starts `command` with `args`. stderr is captured unless `options.stdio` says otherwise; stdout
   * goes where `options.stdio` sends it (the drains give it a log file).
   */
  spawn(command: string, args: readonly string[], options: SpawnOptions): Spawned {
    const child = spawn(command, args, options);
    if (child.pid === undefined) throw new Error(`could not start ${command} ${args.join(' ')}`);
    const pid = child.pid;
    this.#running.add(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < STDERR_LIMIT) stderr += chunk;
    });
    let exit: Exit | undefined;
    const exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        this.#running.delete(child);
        this.#spawned.delete(spawned);
        resolve(exit);
      });
    });
    const spawned: Spawned = {
      pid,
      exited,
      get exit() {
        return exit;
      },
      stderr: () => stderr,
      stdin: child.stdin,
      stdout: child.stdout,
      stop: async (graceMs = DEFAULT_STOP_GRACE_MS) => {
        if (exit) return exit;
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        });
        await Promise.race([exited, late]);
        clearTimeout(timer);
        if (!exit) child.kill('SIGKILL');
        return exited;
      },
    };
    this.#spawned.add(spawned);
    return spawned;
  }

  /**
   * Stops every child still running: SIGTERM first (a `--processes` supervisor then stops its own
   * children, which the bench did not spawn and so cannot signal), SIGKILL after `graceMs`.
   */
  async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all([...this.#spawned].map((spawned) => spawned.stop(graceMs)));
  }
}

/** The environment of a worker: the bench's own settings must not change what is measured. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_OPTIONS', 'BEANSTALKD_URL', 'LOG_LEVEL', 'BSWORKER_INLINE']) delete env[name];
  return { ...env, ...extra };
}
