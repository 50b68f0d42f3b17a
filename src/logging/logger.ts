/**
 * Logging. The library never writes to the console: it logs through a pino logger that the user may
 * pass in, and each job gets a child logger carrying `{ tube, jobId, task }`.
 */

import { type LevelWithSilent, type Logger as PinoLogger, pino } from 'pino';
import type PinoPretty from 'pino-pretty';
import { lazyRequire } from '../loader/lazy-require.js';

/** The logger type bsworker accepts: any pino logger. */
export type Logger = PinoLogger;

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /**
   * The lowest level written.
   * @defaultValue `LOG_LEVEL` from the environment, else `'info'`
   */
  readonly level?: LevelWithSilent;
  /**
   * Human-readable lines instead of JSON.
   * @defaultValue true when stdout is a terminal
   */
  readonly pretty?: boolean;
  /** Where lines go. @defaultValue standard output */
  readonly destination?: NodeJS.WritableStream;
}

/** The levels pino knows, for validating `--log-level`. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Makes bsworker's default logger: JSON lines (one object per event, for log shippers) unless stdout is
 * a terminal, where pino-pretty runs in-process so that a crash cannot lose buffered lines in a worker
 * thread.
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  if (!LOG_LEVELS.includes(level)) {
    throw new TypeError(
      `Expected the log level${options.level === undefined ? ' (LOG_LEVEL)' : ''} to be one of ${LOG_LEVELS.join(', ')}, got \`${level}\``,
    );
  }
  const destination = options.destination ?? process.stdout;
  const usePretty = options.pretty ?? (destination === process.stdout && process.stdout.isTTY === true);
  if (usePretty) {
    return pino(
      { level },
      loadPretty()({
        destination: destination as NodeJS.WritableStream & { fd?: number },
        sync: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      }),
    );
  }
  return pino({ level, base: { pid: process.pid } }, destination === process.stdout ? bufferedStdout() : destination);
}

/** Lines are gathered up to this many bytes per write to standard output... */
const LOG_BUFFER_BYTES = 4_096;
/** ...and written at least this often, so a quiet worker's lines are never more than this late. */
const LOG_FLUSH_MS = 100;

type Destination = ReturnType<typeof pino.destination>;
let stdoutDestination: Destination | undefined;

/**
 * Standard output for JSON lines, written in batches: a worker logs a line per job, and a write per line
 * cost more than the rest of the line's logging. Synchronous writes of gathered lines measured cheaper
 * than pino's asynchronous mode, which hands each batch to a thread. One destination per process, whose
 * remaining lines are written when the process exits (even on an uncaught exception); only a SIGKILL
 * can lose the last ones, at most {@link LOG_FLUSH_MS} of them.
 */
function bufferedStdout(): Destination {
  if (stdoutDestination === undefined) {
    const destination = pino.destination({ fd: 1, sync: true, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
    process.once('exit', () => {
      try {
        destination.flushSync();
      } catch {
        // Nothing is left to report to: stdout itself failed (a closed pipe).
      }
    });
    stdoutDestination = destination;
  }
  return stdoutDestination;
}

/** Coerces anything thrown into an Error, keeping the original value as `cause`. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return new Error(`non-Error thrown: ${text}`, { cause: value });
}

// pino-pretty is loaded only for a terminal: a worker logging JSON never needs it, and its memory counts.
const loadPretty = lazyRequire<typeof PinoPretty>('pino-pretty');
