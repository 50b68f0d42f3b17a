/**
 * The processes under test: one beanstalkd with a binlog, and the bsworker CLIs. Each can be killed,
 * stopped, continued and started again by the chaos loop; a worker that exits when nobody asked it to
 * is counted and started again, since the soak wants three workers for its whole length.
 */
import { join } from 'node:path';
import { type BeanstalkdServer, startBeanstalkd } from '../test/helpers/beanstalkd.js';
import { type Exit, type Proc, type Processes, signalPid, sleep, within } from './procs.js';
import { DEAD_LETTER_TUBE, WORK_TUBES } from './shared.js';

/** beanstalkd may need a moment before its old port can be bound again. */
const RESTART_ATTEMPTS = 40;
const RESTART_PAUSE_MS = 250;
/** The workers' own grace period: a graceful restart in the chaos loop should not take 30 s. */
export const WORKER_GRACE_MS = 5_000;
/** A worker that died on its own is started again after this. */
const RESPAWN_DELAY_MS = 1_000;

/** The soak's beanstalkd: always the same port and binlog directory, so a restart keeps every job. */
export class Server {
  #server: BeanstalkdServer | undefined;
  /** How many times it has been started. */
  starts = 0;

  constructor(readonly binlogDir: string) {}

  /** The port, fixed by the first start. */
  get port(): number {
    if (this.#server === undefined) throw new Error('soak: beanstalkd has not been started');
    return this.#server.port;
  }

  /** `127.0.0.1:PORT`, for `--url` and BEANSTALKD_URL. */
  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The pid of the current beanstalkd process. */
  get pid(): number | undefined {
    return this.#server?.pid;
  }

  /** Starts beanstalkd (on its old port after the first start) and resolves once it answers. */
  async start(): Promise<void> {
    const port = this.#server?.port;
    let lastError: unknown;
    for (let attempt = 0; attempt < RESTART_ATTEMPTS; attempt++) {
      try {
        this.#server = await startBeanstalkd(port === undefined ? { binlogDir: this.binlogDir } : { binlogDir: this.binlogDir, port });
        this.starts += 1;
        return;
      } catch (error) {
        lastError = error;
        await sleep(RESTART_PAUSE_MS);
      }
    }
    throw new Error(`soak: beanstalkd did not start again: ${(lastError as Error).message}`);
  }

  /** Sends `signal` and waits for the exit (SIGKILL, SIGTERM). */
  async stop(signal: NodeJS.Signals): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    signalPid(server.pid, 'SIGCONT');
    await server.stop(signal);
  }

  /** SIGSTOP or SIGCONT. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.#server !== undefined) signalPid(this.#server.pid, signal);
  }
}

/** One bsworker CLI of a given shape. */
export class WorkerCli {
  #proc: Proc | undefined;
  /** False once the soak is shutting it down for good. */
  #wanted = true;
  /** True while the chaos loop has it down on purpose. */
  held = false;
  /** Exits nobody asked for, with how they ended. */
  readonly unexpectedExits: Exit[] = [];
  starts = 0;

  constructor(
    readonly name: string,
    readonly shape: readonly string[],
    private readonly processes: Processes,
    private readonly context: { readonly repo: string; readonly server: Server; readonly env: NodeJS.ProcessEnv; readonly logDir: string },
  ) {}

  /** The pid of the running CLI, undefined while it is down. */
  get pid(): number | undefined {
    return this.#proc?.exit === undefined ? this.#proc?.pid : undefined;
  }

  /** The command line after `bsworker`. */
  args(): string[] {
    return [
      '--tubes',
      WORK_TUBES.join(','),
      '--jobs',
      join(this.context.repo, 'soak', 'jobs'),
      '--url',
      this.context.server.url,
      ...this.shape,
      '--kick-period',
      '1',
      '--max-kicks',
      '2',
      '--dead-letter',
      DEAD_LETTER_TUBE,
      '--grace-ms',
      String(WORKER_GRACE_MS),
      '--log-level',
      'warn',
    ];
  }

  /** Spawns the CLI; it is started again if it exits while wanted and not held by the chaos loop. */
  start(): void {
    const proc = this.processes.spawn(process.execPath, [join(this.context.repo, 'bin', 'bsworker'), ...this.args()], {
      cwd: this.context.repo,
      env: this.context.env,
      logFile: join(this.context.logDir, `worker-${this.name}.log`),
    });
    this.#proc = proc;
    this.starts += 1;
    void proc.exited.then(async (exit) => {
      if (!this.#wanted || this.held || this.#proc !== proc) return;
      this.unexpectedExits.push(exit);
      await sleep(RESPAWN_DELAY_MS);
      if (this.#wanted && !this.held && this.#proc === proc) this.start();
    });
  }

  /** Sends `signal` and waits for the exit; the caller starts it again. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined || proc.exit) return;
    signalPid(proc.pid, 'SIGCONT');
    signalPid(proc.pid, signal);
    await within(proc.exited, WORKER_GRACE_MS + 5_000);
    if (!proc.exit) {
      signalPid(proc.pid, 'SIGKILL');
      await proc.exited;
    }
  }

  /** Graceful stop for the end of the soak. */
  async shutdown(): Promise<Exit | undefined> {
    this.#wanted = false;
    const proc = this.#proc;
    if (proc === undefined) return undefined;
    return this.processes.stop(proc, WORKER_GRACE_MS + 5_000);
  }
}
