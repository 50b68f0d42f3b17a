/** Worker options: one type, one set of defaults, one validation. */
import type { ServerAddress } from '../beanstalk/address.js';
import type { Beanstalk } from '../beanstalk/types.js';
import { assertInteger, assertTubeName, UINT32_MAX } from '../beanstalk/validate.js';
import type { Logger } from '../logging/logger.js';

/** Options of {@link Worker}. */
export interface WorkerOptions {
  /** The tubes to watch. `default` is watched only when listed here. */
  readonly tubes: readonly string[];
  /**
   * The beanstalkd server: `beanstalk://host:port`, `host:port` or `host`.
   * @defaultValue `BEANSTALKD_URL` from the environment, else `127.0.0.1:11300`
   */
  readonly url?: string;
  /** @defaultValue a pino logger at `info` (JSON, or pretty on a terminal) */
  readonly logger?: Logger;
  /**
   * How many times a failing job may be kicked before a failure deletes it instead of burying it.
   * 0 deletes a failed job at once.
   * @defaultValue 3
   */
  readonly maxKicks?: number;
  /**
   * How long one `reserve-with-timeout` waits. Short, so the loop comes round often; a stop does not
   * wait for it (the connection is closed under it).
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
  /** Opens the connection; replace it to test the loop with a fake. @defaultValue BeanstalkConnection.connect */
  readonly connect?: (address: ServerAddress, options: { connectTimeoutMs: number }) => Promise<Beanstalk>;
}

/** Every default of {@link WorkerOptions}, in one place. */
export const WORKER_DEFAULTS = Object.freeze({
  maxKicks: 3,
  reserveTimeoutSeconds: 1,
  graceMs: 30_000,
  connectTimeoutMs: 10_000,
});

/** Options with defaults applied and checked. */
export interface ResolvedWorkerOptions {
  readonly tubes: readonly string[];
  readonly maxKicks: number;
  readonly reserveTimeoutSeconds: number;
  readonly graceMs: number;
  readonly connectTimeoutMs: number;
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
  };
  assertInteger(resolved.maxKicks, 'maxKicks', 0, UINT32_MAX);
  assertInteger(resolved.reserveTimeoutSeconds, 'reserveTimeoutSeconds', 0, 3_600);
  assertInteger(resolved.graceMs, 'graceMs', 0, 2_147_483_647);
  assertInteger(resolved.connectTimeoutMs, 'connectTimeoutMs', 1, 2_147_483_647);
  return resolved;
}
