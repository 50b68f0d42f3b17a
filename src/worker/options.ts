/** Worker options: one type, one set of defaults, one validation. */

import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import { assertInteger, assertTubeName, UINT32_MAX } from '../beanstalk/validate.js';
import type { Logger } from '../logging/logger.js';
import type { ServerUrls } from '../servers/server-list.js';

/** Options of {@link Worker}. */
export interface WorkerOptions {
  /** The tubes to watch. `default` is watched only when listed here. */
  readonly tubes: readonly string[];
  /**
   * The beanstalkd server: `beanstalk://host:port`, `host:port` or `host`; several as a comma-separated
   * list or an array, all reserved from with one concurrency budget (see the README's "Several servers").
   * @defaultValue `BEANSTALKD_URL` from the environment, else `127.0.0.1:11300`
   */
  readonly url?: ServerUrls;
  /** @defaultValue a pino logger at `info` (JSON, or pretty on a terminal) */
  readonly logger?: Logger;
  /**
   * How many times a failing job may be kicked before a failure deletes it instead of burying it.
   * 0 deletes a failed job at once.
   * @defaultValue 3
   */
  readonly maxKicks?: number;
  /**
   * How long the engine's one waiting `reserve-with-timeout` waits when the tubes are empty. Short, so
   * the loop comes round often; a stop does not wait for it (its connection is closed under it).
   * @defaultValue 1
   */
  readonly reserveTimeoutSeconds?: number;
  /**
   * How long `stop()` lets a running job finish before giving it back to beanstalkd.
   * @defaultValue 30000
   */
  readonly graceMs?: number;
  /**
   * How long to wait for the TCP connection.
   * @defaultValue 10000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How many jobs run at once in this process: a budget, not a number of connections. The reservation
   * engine keeps at most this many reserves and jobs outstanding, several on one connection, and waits
   * with one reserve per server when the tubes are empty (see ../engine/engine.ts).
   * @defaultValue 1
   */
  readonly concurrency?: number;
  /**
   * Kick the buried jobs of the watched tubes this often, so failures are retried automatically up to
   * `maxKicks`.
   * @defaultValue off
   */
  readonly kickPeriodSeconds?: number;
  /**
   * At the kick bound, put the job (with the failure under `meta.dead_letter`) into this tube instead
   * of deleting it.
   * @defaultValue off: the job is deleted and its body logged
   */
  readonly deadLetterTube?: string;
  /**
   * Bury a failed job with its failure record (error, stack, attempt, kicks, worker, time) kept in the
   * job, as a copy with a new id (see the README's "Failure records"). Needs beanstalkd 1.12 or later;
   * on an older server the worker buries plainly and says so once.
   * @defaultValue true
   */
  readonly failureRecords?: boolean;
  /**
   * How many reservations of one job may end without an outcome (its worker died, or a stop gave it
   * back) before the job is buried instead of run again: a job that crashes every worker that takes it
   * would otherwise take them down one after another. Each kick allows as many more. 0 turns the check off.
   *
   * The check reads the job's counters (`stats-job`), a round trip that would cost a third of the
   * throughput if made for every job, so it is made where a crashed job can be: for the first
   * `max(16, 4 * concurrency)` jobs after the worker starts and after `checkNextJobsForCrashes()`.
   * @defaultValue 3
   */
  readonly maxCrashes?: number;
  /**
   * The first delay before reconnecting after a lost connection; it doubles up to `reconnectMaxMs`.
   * @defaultValue 100
   */
  readonly reconnectMinMs?: number;
  /** @defaultValue 10000 */
  readonly reconnectMaxMs?: number;
  /**
   * How long any command but a waiting reserve may go unanswered before its connection is dropped (the
   * job it held goes back to ready on the server) and the slot reconnects: a hung server, or a proxy
   * that holds a half-open socket, must not stall the worker.
   * @defaultValue 10000
   */
  readonly commandTimeoutMs?: number;
  /**
   * kwargs keys whose values never reach a log (compared without regard to case, at any depth): where
   * a job's body is logged (a job deleted at the kick bound, an unrunnable job) they read `[redacted]`.
   * @defaultValue none
   */
  readonly redact?: readonly string[];
  /**
   * Run task code in this many worker threads, each of which imports `jobsDir` (as the CLI does), instead
   * of on the worker's own thread. For CPU-bound tasks: their code cannot block the keep-alive that
   * touches the job, so a task may compute for longer than its TTR without being handed to another
   * worker, and a task that ignores its timeout is stopped by terminating its thread. Kwargs and errors
   * cross by structured clone; `ctx.logger` logs JSON lines from the thread.
   * @defaultValue off: tasks run on the worker's thread
   */
  readonly threads?: { readonly size: number; readonly jobsDir: string };
  /** Opens connections; replace it to test the loop with a fake. @defaultValue BeanstalkConnection.connect */
  readonly connect?: ConnectFunction;
}

/** Every default of {@link WorkerOptions}, in one place. */
export const WORKER_DEFAULTS = Object.freeze({
  maxKicks: 3,
  reserveTimeoutSeconds: 1,
  graceMs: 30_000,
  connectTimeoutMs: 10_000,
  concurrency: 1,
  maxCrashes: 3,
  reconnectMinMs: 100,
  reconnectMaxMs: 10_000,
  commandTimeoutMs: 10_000,
});

/** Options with defaults applied and checked. */
export interface ResolvedWorkerOptions {
  readonly tubes: readonly string[];
  readonly maxKicks: number;
  readonly reserveTimeoutSeconds: number;
  readonly graceMs: number;
  readonly connectTimeoutMs: number;
  readonly concurrency: number;
  readonly maxCrashes: number;
  readonly kickPeriodSeconds: number | undefined;
  readonly deadLetterTube: string | undefined;
  readonly failureRecords: boolean;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly commandTimeoutMs: number;
  readonly redact: readonly string[];
  readonly threads: { readonly size: number; readonly jobsDir: string } | undefined;
}

/** Applies {@link WORKER_DEFAULTS} and throws a TypeError/RangeError naming any bad option. */
export function validateWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('Expected Worker options to be an object');
  const { tubes } = options;
  if (!Array.isArray(tubes) || tubes.length === 0) {
    throw new TypeError(
      `Expected \`tubes\` to be a non-empty array of tube names, got ${Array.isArray(tubes) ? 'an empty array' : typeof tubes}`,
    );
  }
  for (const [i, tube] of tubes.entries()) assertTubeName(tube, `tubes[${i}]`);
  const resolved = {
    tubes: [...new Set(tubes as string[])],
    maxKicks: options.maxKicks ?? WORKER_DEFAULTS.maxKicks,
    reserveTimeoutSeconds: options.reserveTimeoutSeconds ?? WORKER_DEFAULTS.reserveTimeoutSeconds,
    graceMs: options.graceMs ?? WORKER_DEFAULTS.graceMs,
    connectTimeoutMs: options.connectTimeoutMs ?? WORKER_DEFAULTS.connectTimeoutMs,
    concurrency: options.concurrency ?? WORKER_DEFAULTS.concurrency,
    maxCrashes: options.maxCrashes ?? WORKER_DEFAULTS.maxCrashes,
    kickPeriodSeconds: options.kickPeriodSeconds,
    deadLetterTube: options.deadLetterTube,
    failureRecords: options.failureRecords ?? true,
    reconnectMinMs: options.reconnectMinMs ?? WORKER_DEFAULTS.reconnectMinMs,
    reconnectMaxMs: options.reconnectMaxMs ?? WORKER_DEFAULTS.reconnectMaxMs,
    commandTimeoutMs: options.commandTimeoutMs ?? WORKER_DEFAULTS.commandTimeoutMs,
    redact: validateRedact(options.redact),
    threads: options.threads,
  };
  assertInteger(resolved.maxKicks, 'maxKicks', 0, UINT32_MAX);
  assertInteger(resolved.reserveTimeoutSeconds, 'reserveTimeoutSeconds', 0, 3_600);
  assertInteger(resolved.graceMs, 'graceMs', 0, 2_147_483_647);
  assertInteger(resolved.connectTimeoutMs, 'connectTimeoutMs', 1, 2_147_483_647);
  assertInteger(resolved.concurrency, 'concurrency', 1, 1_000);
  assertInteger(resolved.maxCrashes, 'maxCrashes', 0, 1_000_000);
  if (resolved.kickPeriodSeconds !== undefined) assertInteger(resolved.kickPeriodSeconds, 'kickPeriodSeconds', 1, 86_400);
  if (resolved.deadLetterTube !== undefined) {
    assertTubeName(resolved.deadLetterTube, 'deadLetterTube');
    if (resolved.tubes.includes(resolved.deadLetterTube)) {
      throw new RangeError(
        `Expected \`deadLetterTube\` not to be a watched tube, got \`${resolved.deadLetterTube}\`: its jobs would be run again`,
      );
    }
  }
  if (typeof resolved.failureRecords !== 'boolean') {
    throw new TypeError(`Expected \`failureRecords\` to be a boolean, got ${typeof resolved.failureRecords}`);
  }
  assertInteger(resolved.reconnectMinMs, 'reconnectMinMs', 1, 600_000);
  assertInteger(resolved.reconnectMaxMs, 'reconnectMaxMs', resolved.reconnectMinMs, 600_000);
  assertInteger(resolved.commandTimeoutMs, 'commandTimeoutMs', 100, 2_147_483_647);
  if (resolved.threads !== undefined) {
    assertInteger(resolved.threads.size, 'threads.size', 1, 256);
    if (typeof resolved.threads.jobsDir !== 'string' || resolved.threads.jobsDir === '') {
      throw new TypeError('Expected `threads.jobsDir` to be the jobs directory each task thread imports');
    }
  }
  return resolved;
}

function validateRedact(redact: readonly string[] | undefined): readonly string[] {
  if (redact === undefined) return [];
  if (!Array.isArray(redact)) throw new TypeError(`Expected \`redact\` to be an array of kwargs keys, got ${typeof redact}`);
  for (const [i, key] of redact.entries()) {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TypeError(
        `Expected \`redact[${i}]\` to be a non-empty string, got ${typeof key === 'string' ? 'an empty string' : typeof key}`,
      );
    }
  }
  return Object.freeze([...redact]);
}
