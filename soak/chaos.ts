/**
 * The chaos loop: every 5-15 s (seeded) it picks a victim (a worker, a child of the `--processes`
 * worker, or beanstalkd) and an action (SIGKILL and start again, SIGSTOP then SIGCONT, SIGTERM and start
 * again), does it, and waits for the victim to be back before the next pause. One action at a time, so
 * that "an action is in effect" has a clear meaning for the stall measure.
 */
import type { Server, WorkerCli } from './cluster.js';
import { childPids, signalPid, sleep } from './procs.js';

/** What the chaos loop can do to a victim. */
export type ChaosAction = 'kill' | 'stop' | 'restart';

/** One action, for the summary. */
export interface ChaosEvent {
  /** Milliseconds since the soak started. */
  readonly atMs: number;
  readonly victim: string;
  readonly action: ChaosAction;
  /** How long the victim was down or stopped, in milliseconds. */
  durationMs: number;
  /** Set when the action itself failed (e.g. beanstalkd did not come back). */
  error?: string;
}

/** Timing of the loop. */
export interface ChaosTiming {
  readonly minPauseMs: number;
  readonly maxPauseMs: number;
  readonly minStopMs: number;
  readonly maxStopMs: number;
}

/** The default timing: an action every 5-15 s, a SIGSTOP held for 2-5 s. */
export const DEFAULT_TIMING: ChaosTiming = { minPauseMs: 5_000, maxPauseMs: 15_000, minStopMs: 2_000, maxStopMs: 5_000 };

interface Victim {
  readonly name: string;
  readonly actions: readonly ChaosAction[];
  /** Does `action`; resolves once the victim is back. */
  run(action: ChaosAction, holdMs: number): Promise<void>;
}

/** Runs the chaos loop until {@link Chaos.stop}; exposes whether an action is in effect right now. */
export class Chaos {
  readonly events: ChaosEvent[] = [];
  /** True from the start of an action until its victim is back. */
  active = false;
  /** When the last action ended (ms since the start), for the stall measure. */
  lastEndedAtMs = 0;
  readonly #victims: Victim[];
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(
    private readonly server: Server,
    workers: readonly WorkerCli[],
    supervised: WorkerCli | undefined,
    private readonly random: () => number,
    private readonly timing: ChaosTiming,
    private readonly startedAt: number,
    /** Victim and action of the first action (a short run should not leave beanstalkd untouched). */
    private readonly first?: { readonly victim: string; readonly action: ChaosAction },
  ) {
    this.#victims = [...workers.map((worker) => this.#workerVictim(worker)), this.#serverVictim()];
    if (supervised !== undefined) this.#victims.push(this.#childVictim(supervised));
  }

  /** Starts the loop. */
  start(): void {
    this.#loop = this.#run();
  }

  /** Ends the loop after the action in progress (whose victim is then back). */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  #between(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    for (;;) {
      await sleep(this.#between(this.timing.minPauseMs, this.timing.maxPauseMs), signal);
      if (signal.aborted) return;
      const forced = this.events.length === 0 ? this.first : undefined;
      const victim = (this.#victims.find((v) => v.name === forced?.victim) ??
        this.#victims[Math.floor(this.random() * this.#victims.length)]) as Victim;
      const action = forced?.action ?? (victim.actions[Math.floor(this.random() * victim.actions.length)] as ChaosAction);
      const holdMs = this.#between(this.timing.minStopMs, this.timing.maxStopMs);
      const begun = Date.now();
      const event: ChaosEvent = { atMs: begun - this.startedAt, victim: victim.name, action, durationMs: 0 };
      this.events.push(event);
      this.active = true;
      try {
        await victim.run(action, holdMs);
      } catch (error) {
        event.error = error instanceof Error ? error.message : String(error);
      } finally {
        event.durationMs = Date.now() - begun;
        this.active = false;
        this.lastEndedAtMs = Date.now() - this.startedAt;
      }
    }
  }

  #workerVictim(worker: WorkerCli): Victim {
    return {
      name: `worker ${worker.name}`,
      actions: ['kill', 'stop', 'restart'],
      run: async (action, holdMs) => {
        if (action === 'stop') {
          const pid = worker.pid;
          if (pid === undefined) return;
          signalPid(pid, 'SIGSTOP');
          await sleep(holdMs);
          signalPid(pid, 'SIGCONT');
          return;
        }
        worker.held = true;
        try {
          await worker.kill(action === 'kill' ? 'SIGKILL' : 'SIGTERM');
          await sleep(this.#between(200, 1_000));
          worker.start();
        } finally {
          worker.held = false;
        }
      },
    };
  }

  /** A child of the `--processes` supervisor: the supervisor, not the soak, must replace it. */
  #childVictim(supervised: WorkerCli): Victim {
    return {
      name: `child of ${supervised.name}`,
      actions: ['kill', 'stop'],
      run: async (action, holdMs) => {
        const parent = supervised.pid;
        const children = parent === undefined ? [] : childPids(parent);
        const pid = children[Math.floor(this.random() * children.length)];
        if (pid === undefined) return;
        if (action === 'kill') {
          signalPid(pid, 'SIGKILL');
          // The supervisor restarts a dead child after its own backoff (1 s the first time).
          await sleep(1_000);
          return;
        }
        signalPid(pid, 'SIGSTOP');
        await sleep(holdMs);
        signalPid(pid, 'SIGCONT');
      },
    };
  }

  #serverVictim(): Victim {
    return {
      name: 'beanstalkd',
      actions: ['kill', 'stop', 'restart'],
      run: async (action, holdMs) => {
        if (action === 'stop') {
          this.server.signal('SIGSTOP');
          await sleep(holdMs);
          this.server.signal('SIGCONT');
          return;
        }
        await this.server.stop(action === 'kill' ? 'SIGKILL' : 'SIGTERM');
        await sleep(this.#between(200, 1_500));
        await this.server.start();
      },
    };
  }
}
