/**
 * Thrown values, made safe to handle and to log. Tasks can throw anything (a string, a Proxy whose
 * traps throw, an Error whose `message` getter throws), and their messages carry job data of any size;
 * nothing here may throw or let a log line grow without bound.
 */

import { boundedCopy, type CopyLimits, readSafely } from './redact.js';
import { capText, LOG_LIMITS } from './text.js';

/** The message of a coerced value that nothing could be learnt about. */
export const UNDESCRIBABLE = 'a thrown value that could not be described';

/** Small bounds for describing a thrown non-Error and an error's extra properties. */
const DESCRIBE_LIMITS: CopyLimits = Object.freeze({ depth: 3, nodes: 50, stringChars: 500 });

/** `instanceof Error` that survives a Proxy whose getPrototypeOf trap throws. */
function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

const THREW = Symbol('threw');

/**
 * A short text for any value, or undefined when nothing about it can be read. Strings stand for
 * themselves; other values are shown as bounded JSON.
 */
function describe(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'function') {
    const name = readSafely(value, 'name');
    return typeof name === 'string' && name !== '' ? `[function ${capText(name, 200)}]` : '[function]';
  }
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'bigint' ? `${value}n` : String(value);
  }
  const copied = boundedCopy(value, DESCRIBE_LIMITS);
  // A top-level "[unreadable]" means every way in threw: there is nothing true to say.
  return copied === '[unreadable]' ? undefined : JSON.stringify(copied);
}

/**
 * Coerces anything thrown into an Error, keeping the original value as `cause`. Total: it never throws.
 * An Error is returned as it is when its `name`, `message` and `stack` can be read; one whose getters
 * throw is wrapped, so code that reads `error.message` afterwards is safe.
 */
export function toError(value: unknown): Error {
  if (isError(value)) {
    let readable = true;
    for (const key of ['name', 'message', 'stack'] as const) {
      if (readSafely(value, key, THREW) === THREW) readable = false;
    }
    if (readable) return value;
    return new Error('an Error was thrown whose name, message or stack could not be read', { cause: value });
  }
  let text: string | undefined;
  try {
    text = describe(value);
  } catch {
    text = undefined;
  }
  return new Error(text === undefined ? UNDESCRIBABLE : `non-Error thrown: ${text}`, { cause: value });
}

/** An error as it appears in a log line. */
export interface SerializedError {
  /** The error's `name` (pino's key for it). */
  type: string;
  /** The message, capped. */
  message: string;
  /** The stack, capped; missing for an expected connection error and for a thrown non-Error. */
  stack?: string;
  /** The error's `code`, when it is a string or a number. */
  code?: string | number;
  /** The cause, serialized the same way, a few levels deep. */
  cause?: unknown;
  /** A few other own properties (`address`, `errno`, ...), as bounded copies. */
  [key: string]: unknown;
}

/** Keys the serializer writes itself, never copied from the error's own properties. */
const OWN_KEYS = new Set(['type', 'name', 'message', 'stack', 'code', 'cause', 'errors']);
/** Extra own properties of an error kept in the log (`address`, `command`, `errno`, ...). */
const MAX_EXTRA_PROPS = 10;
/** Members of an AggregateError's `errors` kept. */
const MAX_AGGREGATE_ERRORS = 5;

/**
 * Errors the worker expects and handles (a lost connection is retried): their stack says nothing the
 * message does not, and during an outage it would print 25 lines per attempt.
 */
function isExpected(error: Error): boolean {
  return readSafely(error, 'code') === 'CONNECTION' && readSafely(error, 'name') === 'ConnectionError';
}

/**
 * Caps a stack: the header (`Name: message`, which holds job data) to the message cap, then at most
 * {@link LOG_LIMITS}.stackFrames frames and {@link LOG_LIMITS}.stackChars characters, with a marker line.
 */
function capStack(stack: string, header: string | undefined, cappedHeader: string): string {
  // A stack built by hand: no header to tell apart, so only the line and character caps apply.
  const known = header !== undefined && stack.startsWith(header);
  const lines = (known ? stack.slice((header as string).length) : stack).split('\n');
  // lines[0] is what followed the header on its line: normally empty.
  const head = lines[0] ?? '';
  const kept = lines.slice(1, LOG_LIMITS.stackFrames + 1);
  const cutFrames = lines.length - 1 - kept.length;
  let out = [(known ? cappedHeader : '') + head, ...kept].join('\n');
  if (cutFrames > 0) out += `\n    ... ${cutFrames} more frames cut`;
  return capText(out, LOG_LIMITS.stackChars);
}

/** The `Name: message` start of a V8 stack, found even when `name` changed after the stack was made. */
function stackHeader(stack: string, message: string): string | undefined {
  if (message === '') {
    const end = stack.indexOf('\n');
    return end === -1 ? stack : stack.slice(0, end);
  }
  const at = stack.indexOf(`: ${message}`);
  // The name comes first and holds no line break; anything else is a stack built by hand.
  if (at === -1 || at > 200 || stack.slice(0, at).includes('\n')) return undefined;
  return stack.slice(0, at + 2 + message.length);
}

function serialize(error: Error, depth: number, seen: Set<unknown>, expected: boolean): SerializedError {
  seen.add(error);
  const name = readSafely(error, 'name', THREW);
  const rawMessage = readSafely(error, 'message', THREW);
  const type = typeof name === 'string' ? capText(name, 200) : 'Error';
  let message: string;
  if (typeof rawMessage === 'string') message = capText(rawMessage, LOG_LIMITS.errorMessageChars);
  else if (rawMessage === THREW) message = '[the message could not be read]';
  else message = capText(describe(rawMessage) ?? UNDESCRIBABLE, LOG_LIMITS.errorMessageChars);
  const out: SerializedError = { type, message };

  const quiet = expected || isExpected(error);
  if (!quiet) {
    const stack = readSafely(error, 'stack');
    if (typeof stack === 'string') {
      const header = typeof rawMessage === 'string' ? stackHeader(stack, rawMessage) : undefined;
      const cappedHeader = header === undefined ? '' : `${header.slice(0, header.length - (rawMessage as string).length)}${message}`;
      out.stack = capStack(stack, header, cappedHeader);
    }
  }
  const code = readSafely(error, 'code');
  if (typeof code === 'string') out.code = capText(code, 200);
  else if (typeof code === 'number') out.code = code;

  let keys: string[] = [];
  try {
    keys = Object.keys(error);
  } catch {
    // An ownKeys trap that throws: no extra properties then.
  }
  let extras = 0;
  for (const key of keys) {
    if (OWN_KEYS.has(key)) continue;
    if (extras++ >= MAX_EXTRA_PROPS) break;
    const value = boundedCopy(readSafely(error, key, '[unreadable]'), DESCRIBE_LIMITS);
    if (value !== undefined) out[capText(key, 200)] = value;
  }

  const aggregate = readSafely(error, 'errors');
  if (Array.isArray(aggregate) && depth < LOG_LIMITS.causeDepth) {
    out.errors = aggregate.slice(0, MAX_AGGREGATE_ERRORS).map((item) => serializeValue(item, depth + 1, seen, quiet));
    if (aggregate.length > MAX_AGGREGATE_ERRORS) (out.errors as unknown[]).push(`[${aggregate.length - MAX_AGGREGATE_ERRORS} more cut]`);
  }
  const cause = readSafely(error, 'cause');
  if (cause !== undefined) {
    out.cause = depth < LOG_LIMITS.causeDepth ? serializeValue(cause, depth + 1, seen, quiet) : '[cause depth limit]';
  }
  return out;
}

function serializeValue(value: unknown, depth: number, seen: Set<unknown>, expected: boolean): unknown {
  if (seen.has(value)) return '[circular]';
  if (isError(value)) return serialize(value, depth, seen, expected);
  return boundedCopy(value, DESCRIBE_LIMITS);
}

/**
 * The pino serializer of `err` and `error`: `type` (the name), `message`, `stack`, `code`, a few other
 * own properties and `cause`, each capped (see {@link LOG_LIMITS}). An expected connection error gets
 * no stack. A value that is not an Error is coerced with {@link toError}. Never throws: pino calls it
 * inside the log call.
 */
export function serializeError(value: unknown): SerializedError {
  try {
    const error = toError(value);
    const out = serialize(error, 0, new Set(), false);
    if (error !== value) {
      // The stack of the Error made here points at toError, not at the throw.
      delete out.stack;
      // A thrown non-Error is described in the message already; its copy as cause would say it twice.
      if (!isError(value)) delete out.cause;
    }
    return out;
  } catch {
    return { type: 'Error', message: UNDESCRIBABLE };
  }
}
