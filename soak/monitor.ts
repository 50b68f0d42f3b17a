/**
 * Samples the system four times a second for the stall measure and the summary.
 *
 * The stall measure: a stall is a stretch of samples in which the work tubes had ready jobs and no task
 * ran (no run log grew), while no chaos action was in effect. Its clock starts at the latest of: the last
 * sample with progress, the last sample with nothing ready, the end of the last chaos action. So the time
 * a victim is down or stopped never counts, but the time the others take to recover after it is back
 * (reconnect backoff, a supervisor's restart delay, jobs held by a stopped worker) does. The resolution is
 * the sampling period (250 ms); a sample that cannot reach beanstalkd resets nothing and adds nothing.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RawClient } from '../test/helpers/raw-client.js';
import type { Chaos } from './chaos.js';
import type { Server } from './cluster.js';
import { type Processes, sleep, within } from './procs.js';
import { WORK_TUBES } from './shared.js';

const SAMPLE_MS = 250;
/** A sample whose stats do not come back this fast (a stopped server) is skipped. */
const SAMPLE_TIMEOUT_MS = 1_000;

/** The work tubes' job counts, summed. */
export interface TubeCounts {
  readonly ready: number;
  readonly reserved: number;
  readonly delayed: number;
  readonly buried: number;
}

/** The longest stall seen. */
export interface Stall {
  readonly ms: number;
  /** When it ended, in ms since the soak started. */
  readonly endedAtMs: number;
  /** The chaos action before it, if any. */
  readonly after: string | undefined;
}

/** Total bytes of the run logs in `dir`: it grows whenever any task runs. */
export function runLogBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    try {
      total += statSync(join(dir, name)).size;
    } catch {
      // A file appearing or vanishing between the two calls.
    }
  }
  return total;
}

/** Reads the work tubes' counts from beanstalkd; throws on a reply that is not a count. */
export async function readTubeCounts(client: RawClient): Promise<TubeCounts> {
  let ready = 0;
  let reserved = 0;
  let delayed = 0;
  let buried = 0;
  for (const tube of WORK_TUBES) {
    const reply = await client.request(`stats-tube ${tube}\r\n`);
    if (reply.line === 'NOT_FOUND') continue;
    if (!reply.line.startsWith('OK ')) throw new Error(`stats-tube ${tube}: ${reply.line}`);
    const stats = parseFlat(reply.body);
    ready += Number(stats['current-jobs-ready'] ?? 0);
    reserved += Number(stats['current-jobs-reserved'] ?? 0);
    delayed += Number(stats['current-jobs-delayed'] ?? 0);
    buried += Number(stats['current-jobs-buried'] ?? 0);
  }
  return { ready, reserved, delayed, buried };
}

function parseFlat(body: Buffer | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of (body ?? Buffer.alloc(0)).toString('utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** Samples until stopped. */
export class Monitor {
  longest: Stall = { ms: 0, endedAtMs: 0, after: undefined };
  /** The most ready jobs seen in one sample. */
  maxReady = 0;
  samples = 0;
  /** Samples that could not reach beanstalkd. */
  missedSamples = 0;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #client: RawClient | undefined;

  constructor(
    private readonly server: Server,
    private readonly chaos: Chaos,
    private readonly processes: Processes,
    private readonly supervisedPid: () => number | undefined,
    private readonly runsDir: string,
    private readonly startedAt: number,
  ) {}

  /** Starts sampling. */
  start(): void {
    this.#loop = this.#run();
  }

  /** Ends sampling and closes its connection. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    this.#client?.close();
  }

  async #sample(): Promise<TubeCounts | undefined> {
    try {
      this.#client ??= await RawClient.connect(this.server.port);
      const client = this.#client;
      const counts = await within(readTubeCounts(client), SAMPLE_TIMEOUT_MS);
      if (counts === undefined) throw new Error('no answer');
      return counts;
    } catch {
      this.#client?.close();
      this.#client = undefined;
      return undefined;
    }
  }

  async #run(): Promise<void> {
    let bytes = runLogBytes(this.runsDir);
    let stallFrom = Date.now();
    while (!this.#abort.signal.aborted) {
      await sleep(SAMPLE_MS, this.#abort.signal);
      const parent = this.supervisedPid();
      if (parent !== undefined) this.processes.noteChildrenOf(parent);
      const counts = await this.#sample();
      const now = Date.now();
      this.samples += 1;
      if (counts === undefined) {
        this.missedSamples += 1;
        continue;
      }
      this.maxReady = Math.max(this.maxReady, counts.ready);
      const nowBytes = runLogBytes(this.runsDir);
      const progressed = nowBytes > bytes;
      bytes = nowBytes;
      const chaosEndedAt = this.startedAt + this.chaos.lastEndedAtMs;
      if (progressed || counts.ready === 0 || this.chaos.active) {
        stallFrom = now;
        continue;
      }
      stallFrom = Math.max(stallFrom, chaosEndedAt);
      const ms = now - stallFrom;
      if (ms > this.longest.ms) {
        const last = this.chaos.events.at(-1);
        this.longest = { ms, endedAtMs: now - this.startedAt, after: last === undefined ? undefined : `${last.action} ${last.victim}` };
      }
    }
  }
}
