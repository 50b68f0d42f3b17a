/**
 * Waiting for beanstalkd at start. A worker (or a pool) started before its server, as compose and
 * systemd often do, waits for it instead of exiting: it probes with a real connection, backing off
 * (capped, jittered, the worker's own reconnect backoff) and logging one line per failed attempt, the
 * way Celery's workers wait for their broker. `--connect-timeout` bounds the wait for those who want it.
 */
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import { ConnectionError } from '../beanstalk/errors.js';
import type { Beanstalk } from '../beanstalk/types.js';
import type { Logger } from '../logging/logger.js';
import { reconnectDelayMs } from '../worker/backoff.js';
import { WORKER_DEFAULTS } from '../worker/options.js';

/** Options of {@link waitForServer}. */
export interface WaitForServerOptions {
  readonly logger: Logger;
  /** Aborting it (a signal, the parent gone) ends the wait at once; it then resolves to false. */
  readonly signal?: AbortSignal;
  /** Give up after this many seconds. @defaultValue wait for ever */
  readonly timeoutSeconds?: number;
  /** The first delay between attempts; it doubles up to `maxDelayMs`. @defaultValue the worker's `reconnectMinMs` (100) */
  readonly minDelayMs?: number;
  /** @defaultValue the worker's `reconnectMaxMs` (10000) */
  readonly maxDelayMs?: number;
  /** Opens the probe connection; replaceable for tests. @defaultValue BeanstalkConnection.connect */
  readonly connect?: (address: ServerAddress, options: { connectTimeoutMs: number }) => Promise<Beanstalk>;
}

/** The server stayed unreachable for the whole `--connect-timeout`. */
export class ServerWaitTimeoutError extends ConnectionError {
  constructor(where: string, seconds: number, attempts: number, last: string) {
    super(where, `beanstalkd at ${where} was still unreachable after ${seconds}s (--connect-timeout, ${attempts} attempts): ${last}`);
    this.name = 'ServerWaitTimeoutError';
  }
}

/** One probe never waits longer than this for its TCP connection and first reply. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Resolves to true once a probe connection to `address` succeeds (it is closed again), or to false
 * when `signal` is aborted first. Rejects with {@link ServerWaitTimeoutError} when `timeoutSeconds`
 * pass first. Errors other than a connection failure (a peer that is not beanstalkd answers with
 * garbage) are failures too: the server may be starting.
 */
export async function waitForServer(address: ServerAddress, options: WaitForServerOptions): Promise<boolean> {
  const { logger, signal } = options;
  const where = formatAddress(address);
  const connect = options.connect ?? ((at, opts) => BeanstalkConnection.connect(at, opts));
  const minMs = options.minDelayMs ?? WORKER_DEFAULTS.reconnectMinMs;
  const maxMs = options.maxDelayMs ?? WORKER_DEFAULTS.reconnectMaxMs;
  const deadline = options.timeoutSeconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutSeconds * 1_000;
  for (let attempt = 1; ; attempt += 1) {
    if (signal?.aborted) return false;
    let failure: string;
    try {
      const left = deadline - Date.now();
      const probe = await abortable(connect(address, { connectTimeoutMs: Math.max(1, Math.min(PROBE_TIMEOUT_MS, left)) }), signal);
      if (probe === undefined) return false;
      await probe.quit().catch(() => undefined);
      if (attempt > 1) logger.info({ server: where, attempts: attempt }, `connected to beanstalkd at ${where} after ${attempt} attempts`);
      return true;
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new ServerWaitTimeoutError(where, options.timeoutSeconds ?? 0, attempt, failure);
    // The last attempt is made at the deadline, not one backoff before it.
    const delayMs = Math.min(reconnectDelayMs(attempt, minMs, maxMs), Math.ceil(left));
    // One line per attempt, the message without its stack: a server that is down for an hour must
    // not fill the log with traces.
    logger.warn(
      { server: where, attempt, delayMs, error: failure },
      `cannot reach beanstalkd at ${where} (attempt ${attempt}): ${failure}; retrying in ${delayMs} ms`,
    );
    if (!(await sleep(delayMs, signal))) return false;
  }
}

/** Resolves like `promise`, or to undefined as soon as `signal` aborts (a late connection is closed). */
function abortable(promise: Promise<Beanstalk>, signal: AbortSignal | undefined): Promise<Beanstalk | undefined> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      resolve(undefined);
      promise.then((late) => late.quit().catch(() => undefined)).catch(() => undefined);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Resolves to true after `ms`, or to false at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * {@link waitForServer} over several servers: resolves true as soon as any of them answers (a worker
 * starts on the servers that are up and picks up the others later), false when the wait is aborted.
 * With every server unreachable for the whole timeout, rejects with the first one's ServerWaitTimeoutError.
 */
export async function waitForAnyServer(addresses: readonly ServerAddress[], options: WaitForServerOptions): Promise<boolean> {
  if (addresses.length === 1) return waitForServer(addresses[0] as ServerAddress, options);
  const done = new AbortController();
  const signal = options.signal === undefined ? done.signal : AbortSignal.any([options.signal, done.signal]);
  const waits = addresses.map((address) => waitForServer(address, { ...options, signal }));
  try {
    // The first that answers wins; a wait that gives up is only an error when they all do.
    const up = await Promise.any(waits.map((wait) => wait.then((answered) => (answered ? true : Promise.reject(new Error('aborted'))))));
    return up;
  } catch (error) {
    if (options.signal?.aborted) return false;
    const reasons = error instanceof AggregateError ? error.errors : [error];
    throw reasons.find((reason) => reason instanceof ServerWaitTimeoutError) ?? reasons[0];
  } finally {
    done.abort();
    await Promise.allSettled(waits);
  }
}
