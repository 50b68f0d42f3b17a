/** The resident set size of another process, sampled from `/proc/<pid>/status` (Linux only). */
import { readFileSync } from 'node:fs';

/** How often VmRSS is read: often enough to catch a short peak, rarely enough to cost nothing. */
const SAMPLE_MS = 20;

/** Samples a process's VmRSS until stopped and keeps the maximum. */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #maxKb = 0;
  /** VmRSS when sampling started (the idle worker, before the drain), in MiB. */
  readonly startMb: number | undefined;

  constructor(pid: number) {
    this.#pid = pid;
    this.#read();
    this.startMb = this.#maxKb > 0 ? this.#maxKb / 1024 : undefined;
    this.#timer = setInterval(() => this.#read(), SAMPLE_MS);
  }

  /** Stops sampling; returns the largest VmRSS seen in MiB, or undefined where /proc is not available. */
  stop(): number | undefined {
    clearInterval(this.#timer);
    this.#read();
    return this.#maxKb > 0 ? this.#maxKb / 1024 : undefined;
  }

  #read(): void {
    try {
      const status = readFileSync(`/proc/${this.#pid}/status`, 'utf8');
      const kb = Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1]);
      if (kb > this.#maxKb) this.#maxKb = kb;
    } catch {
      // No /proc (not Linux), or the process has exited: nothing to sample.
    }
  }
}
