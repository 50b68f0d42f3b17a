/**
 * Logging. The library never writes to the console: it logs through a pino logger that the user may
 * pass in, and each job gets a child logger carrying `{ tube, jobId, task }`.
 */

import { type LevelWithSilent, type LogFn, type LoggerOptions, type Logger as PinoLogger, pino } from 'pino';
import type PinoPretty from 'pino-pretty';
import { lazyRequire } from '../loader/lazy-require.js';
import { serializeError } from './errors.js';
import { prettyDestination } from './pretty.js';
import { boundedCopy } from './redact.js';
import { capText, escapeJsonLine, LOG_LIMITS } from './text.js';

export { type SerializedError, serializeError, toError, UNDESCRIBABLE } from './errors.js';
export { boundedCopy, type CopyLimits, type FormatBodyOptions, formatBodyForLog, REDACTED, redactKwargs } from './redact.js';
export { capText, escapeForTerminal, escapeJsonLine, LOG_LIMITS } from './text.js';

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
  /**
   * pino's `redact` option, passed through: paths such as `'kwargs.password'` whose values are censored
   * in every line. Job bodies logged by the worker are redacted by key instead (see `formatBodyForLog`).
   */
  readonly redact?: LoggerOptions['redact'];
}

/** The levels pino knows, for validating `--log-level`. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Makes bsworker's default logger: JSON lines (one object per event, for log shippers) unless stdout is
 * a terminal, where pino-pretty runs in-process so that a crash cannot lose buffered lines in a worker
 * thread. Either way a line is one line, capped, and safe to print: errors go through
 * {@link serializeError}, `msg` is capped, and job data cannot forge a line or steer a terminal
 * (README, "Logs").
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
  const safety = {
    serializers: { err: serializeErrorField, error: serializeErrorField, msg: capMessage },
    hooks: { logMethod: guardLogCall, streamWrite: safeLine },
    ...(options.redact === undefined ? {} : { redact: options.redact }),
  } satisfies LoggerOptions;
  if (usePretty) return pino({ level, ...safety }, prettyDestination(destination, loadPretty()));
  return pino({ level, base: { pid: process.pid }, ...safety }, destination === process.stdout ? bufferedStdout() : destination);
}

/**
 * Runs each log call so that it never throws into the caller. pino reads the logged object before any
 * serializer sees it (`err.message` when there is no message, `instanceof Error` on the object), so a
 * hostile error or Proxy from a task could otherwise throw out of a log call in the middle of settling a
 * job. The failed line is replaced by one saying why.
 */
function guardLogCall(this: PinoLogger, args: Parameters<LogFn>, method: LogFn): void {
  try {
    method.apply(this, args);
  } catch (error) {
    try {
      method.call(this, { logFailure: serializeError(error) }, 'a log call threw; its line was replaced by this one');
    } catch {
      // The destination itself threw: there is nowhere left to report it.
    }
  }
}

/** pino's serializer of `msg`: a message built from job data (`job buried: ${detail}`) is capped. */
/** An `err` or `error` field: an error is serialized (capped, never throwing); a plain message stays text. */
function serializeErrorField(value: unknown): unknown {
  return typeof value === 'string' ? capText(value, LOG_LIMITS.errorMessageChars) : serializeError(value);
}

function capMessage(message: unknown): unknown {
  return typeof message === 'string' ? capText(message, LOG_LIMITS.messageChars) : message;
}

/** The bounds on the strings of a line that came out longer than {@link LOG_LIMITS}.lineChars. */
const LONG_LINE_LIMITS = Object.freeze({ depth: 8, nodes: 500, stringChars: LOG_LIMITS.fieldChars });

/**
 * The last step before a line is written. An over-long line (a task logging a whole document) is
 * rebuilt with every string cut, and characters JSON leaves raw but terminals act on are escaped. On
 * the per-job path this is a length check and one regex test.
 */
function safeLine(line: string): string {
  if (line.length > LOG_LIMITS.lineChars) {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      const copied = boundedCopy(parsed, LONG_LINE_LIMITS) as Record<string, unknown>;
      line = `${JSON.stringify({ ...copied, logLineChars: line.length })}\n`;
    } catch {
      // Not one JSON object (pino always writes one): cut it as text, keeping it one line.
      line = `${JSON.stringify({ msg: capText(line, LOG_LIMITS.fieldChars), logLineChars: line.length })}\n`;
    }
  }
  return escapeJsonLine(line);
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

// pino-pretty is loaded only for a terminal: a worker logging JSON never needs it, and its memory counts.
const loadPretty = lazyRequire<typeof PinoPretty>('pino-pretty');
