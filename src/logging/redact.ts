/**
 * Bounded, redacting copies of untrusted values, for logs. A copy never throws, whatever it is given
 * (a Proxy whose traps throw, getters that throw, cycles, a toJSON that throws), and never grows past
 * its depth and node budget, so logging a job's arguments cannot stall or break the worker.
 */

import { capText, escapeForTerminal, escapeJsonLine, LOG_LIMITS } from './text.js';

/** What {@link redactKwargs} puts in place of a redacted value. */
export const REDACTED = '[redacted]';

/** Bounds of a copy. */
export interface CopyLimits {
  /** Levels of nesting copied; deeper values become `"[depth limit]"`. */
  readonly depth: number;
  /** Values copied in all; past it, containers end with a marker of how much was left out. */
  readonly nodes: number;
  /** Characters kept of each string. */
  readonly stringChars: number;
}

/** The bounds {@link redactKwargs} uses unless told otherwise. */
export const DEFAULT_COPY_LIMITS: CopyLimits = Object.freeze({ depth: 8, nodes: 1_000, stringChars: 2_000 });

/** A value that could not be read at all: a throwing getter, trap or toJSON with nothing else to show. */
const UNREADABLE = '[unreadable]';

interface CopyState {
  readonly limits: CopyLimits;
  /** Lower-cased keys whose values are replaced by {@link REDACTED}. */
  readonly redact: ReadonlySet<string>;
  /** The containers on the path from the root, to spot cycles. */
  readonly path: Set<object>;
  nodes: number;
}

/** Reads a property; a getter or Proxy trap that throws gives `fallback`. */
export function readSafely(target: object, key: PropertyKey, fallback: unknown = undefined): unknown {
  try {
    return (target as Record<PropertyKey, unknown>)[key];
  } catch {
    return fallback;
  }
}

/**
 * Copies `value` as JSON would see it (toJSON honoured, functions and undefined dropped from objects),
 * within `limits`, replacing values of keys in `redact`. Returns plain data JSON.stringify can always
 * encode.
 */
function copy(value: unknown, state: CopyState, depth: number, key: string): unknown {
  state.nodes += 1;
  switch (typeof value) {
    case 'string':
      return capText(value, state.limits.stringChars);
    case 'number':
      // NaN and Infinity would become null in JSON; in a log their name says more.
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return capText(value.toString(), state.limits.stringChars);
    case 'undefined':
    case 'function':
      return undefined;
  }
  if (value === null) return null;
  const target = value as object;
  if (state.path.has(target)) return '[circular]';
  if (depth >= state.limits.depth) return '[depth limit]';
  const toJSON = readSafely(target, 'toJSON');
  if (typeof toJSON === 'function') {
    let converted: unknown;
    try {
      converted = toJSON.call(target, key);
    } catch {
      converted = UNREADABLE;
    }
    // A toJSON that returns another object with a toJSON is followed one level at a time.
    if (converted !== target) return copy(converted, state, depth + 1, key);
  }
  state.path.add(target);
  try {
    return Array.isArray(target) ? copyArray(target, state, depth) : copyObject(target, state, depth);
  } catch {
    // A revoked Proxy, or an ownKeys trap that throws.
    return UNREADABLE;
  } finally {
    state.path.delete(target);
  }
}

function copyArray(array: readonly unknown[], state: CopyState, depth: number): unknown[] {
  const out: unknown[] = [];
  const length = array.length;
  for (let index = 0; index < length; index++) {
    if (state.nodes >= state.limits.nodes) {
      out.push(`[${length - index} more items cut]`);
      break;
    }
    const item = copy(readSafely(array, index, UNREADABLE), state, depth + 1, String(index));
    out.push(item === undefined ? null : item);
  }
  return out;
}

function copyObject(object: object, state: CopyState, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const keys = Object.keys(object);
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index] as string;
    if (state.nodes >= state.limits.nodes) {
      define(out, '[cut]', `${keys.length - index} more keys`);
      break;
    }
    let item: unknown;
    if (state.redact.size > 0 && state.redact.has(key.toLowerCase())) {
      state.nodes += 1;
      item = REDACTED;
    } else {
      item = copy(readSafely(object, key, UNREADABLE), state, depth + 1, key);
    }
    if (item !== undefined) define(out, capText(key, state.limits.stringChars), item);
  }
  return out;
}

/** Sets a key even when it is `__proto__`, which plain assignment would turn into a prototype swap. */
function define(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/**
 * A bounded copy of `value` for a log: JSON-shaped, at most `limits.depth` deep and `limits.nodes`
 * values, strings cut to `limits.stringChars`. Never throws: whatever cannot be read becomes
 * `"[unreadable]"`, cycles `"[circular]"`.
 */
export function boundedCopy(value: unknown, limits: CopyLimits = DEFAULT_COPY_LIMITS): unknown {
  return copy(value, { limits, redact: new Set(), path: new Set(), nodes: 0 }, 0, '');
}

/**
 * Returns a copy of `value` in which the value of every key named in `keys` (at any depth, arrays
 * included, names compared case-insensitively) is `"[redacted]"`. The copy is bounded like
 * {@link boundedCopy}; the original is not changed. Never throws.
 *
 * @example redactKwargs({ user: { Password: 'x' } }, ['password']) // { user: { Password: '[redacted]' } }
 */
export function redactKwargs(value: unknown, keys: readonly string[], limits: CopyLimits = DEFAULT_COPY_LIMITS): unknown {
  let redact: Set<string>;
  try {
    redact = new Set(Array.from(keys, (key) => String(key).toLowerCase()));
  } catch {
    redact = new Set();
  }
  return copy(value, { limits, redact, path: new Set(), nodes: 0 }, 0, '');
}

/** Options of {@link formatBodyForLog}. */
export interface FormatBodyOptions {
  /** Keys whose values are replaced by `"[redacted]"` (see {@link redactKwargs}). */
  readonly redact: readonly string[];
  /** Characters kept of the result. @defaultValue {@link LOG_LIMITS}.bodyChars */
  readonly maxChars?: number;
}

/**
 * A job body as a log field: a JSON body is parsed, redacted (in `kwargs` and anywhere else, so a
 * malformed envelope cannot smuggle a secret past the list), re-encoded and capped; any other body is
 * shown as capped text with its control characters escaped. The result holds no raw control, bidi or
 * line-separator character, so it is safe even in a logger that does not escape. Never throws.
 */
export function formatBodyForLog(body: Uint8Array, options: FormatBodyOptions): string {
  const maxChars = options.maxChars ?? LOG_LIMITS.bodyChars;
  try {
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    let parsed: unknown;
    let isJson = true;
    try {
      parsed = JSON.parse(text);
    } catch {
      isJson = false;
    }
    // With nothing to redact the text is shown as it is: a body logged as the last copy of a job must not
    // lose strings to the copy's bounds.
    if (!isJson || options.redact.length === 0) return capText(escapeForTerminal(text), maxChars);
    const limits = { ...DEFAULT_COPY_LIMITS, nodes: Math.max(DEFAULT_COPY_LIMITS.nodes, maxChars), stringChars: Math.max(16, maxChars) };
    return capText(escapeJsonLine(JSON.stringify(redactKwargs(parsed, options.redact, limits))), maxChars);
  } catch {
    return '[the body could not be shown]';
  }
}
