/**
 * The wire format, encoded and decoded here and nowhere else.
 *
 * A job body is UTF-8 JSON `{"func_name": string, "tube": string, "kwargs": object}`, the format of the
 * original Python design, so producers and workers in other languages interoperate. Decoders ignore
 * fields they do not know (room for `meta`).
 */

import { bodyText } from './body-text.js';
import { isPlainObject, kindOf, MAX_KWARGS_DEPTH, quote, toWireKwargs, writeWireKwargs } from './json.js';

/** A decoded job body. */
export interface Envelope {
  /** The registered name of the task to run. */
  readonly func_name: string;
  /** The tube the producer meant the job for (the worker trusts the reserved tube, see the README). */
  readonly tube: string | undefined;
  /** The task's keyword arguments. */
  readonly kwargs: Record<string, unknown>;
  /** Extra fields for bsworker and other tools (failure records, dead letters); undefined when absent or not an object. */
  readonly meta?: Record<string, unknown>;
}

/** Why a body could not be decoded. */
export type DecodeFailureReason =
  | 'not-utf8'
  | 'not-json'
  | 'not-an-object'
  | 'missing-func-name'
  | 'bad-func-name'
  | 'bad-kwargs'
  | 'bad-tube'
  | 'proto-key';

/** A body that is not a valid envelope. Returned, never thrown: a bad job must not stop a worker. */
export interface DecodeFailure {
  readonly ok: false;
  readonly reason: DecodeFailureReason;
  /** A sentence for logs and `bsworker buried`. */
  readonly message: string;
}

/** The result of {@link decodeEnvelope}. */
export type DecodeResult = { readonly ok: true; readonly envelope: Envelope } | DecodeFailure;

/** A call encoded by {@link encodeCall}: the body, and its kwargs as a worker will decode them. */
export interface EncodedCall {
  /** The job body, UTF-8 JSON. */
  readonly body: Buffer;
  /**
   * The kwargs the body carries, as a worker will decode them (Dates as strings, `-0` as `0`): the copy
   * the body was written from, so a schema can check them without parsing the body again. Fresh
   * objects: changing them changes neither the body nor the caller's kwargs.
   */
  readonly kwargs: Record<string, unknown>;
}

/**
 * Encodes a call as a job body. Throws a TypeError naming the path (`kwargs.user.id`) when `kwargs`
 * holds something JSON would silently change or cannot encode: BigInt, functions, symbols, `undefined`,
 * NaN and Infinity, sparse arrays, symbol keys, circular references, objects such as Map, Set or class
 * instances that JSON would flatten to `{}`, and nesting deeper than {@link MAX_KWARGS_DEPTH} levels.
 * Dates (and anything with `toJSON`) are encoded through `toJSON`, called once, so a Date arrives as an
 * ISO-8601 string; `-0` arrives as `0`, as JSON writes it.
 */
export function encodeEnvelope(funcName: string, tube: string, kwargs: unknown): Buffer {
  return encodeCall(funcName, tube, kwargs).body;
}

/** {@link encodeEnvelope}, also answering the kwargs as the worker will see them. */
export function encodeCall(funcName: string, tube: string, kwargs: unknown, meta?: Record<string, unknown>): EncodedCall {
  const encoded = encodeCallText(funcName, tube, kwargs, meta);
  return { body: Buffer.from(encoded.text, 'utf8'), kwargs: encoded.kwargs };
}

/**
 * {@link encodeCall} without the Buffer: the body as a string (its size is `Buffer.byteLength(text)`),
 * for a caller that measures a body before it keeps or sends it.
 *
 * `meta` (chains, groups, results, schedules) is written after kwargs as a fourth member, checked as
 * kwargs are; without it the body is exactly the three-member envelope, so a job that uses none of
 * those features is byte for byte what other languages' producers write.
 */
export function encodeCallText(
  funcName: string,
  tube: string,
  kwargs: unknown,
  meta?: Record<string, unknown>,
): { readonly text: string; readonly kwargs: Record<string, unknown> } {
  const wire = checkCall(funcName, tube, kwargs);
  // The same bytes as JSON.stringify({ func_name, tube, kwargs }); JSON.stringify only ever sees the
  // checked copy, never the caller's objects.
  const head = `${envelopeHead(funcName, tube)}${writeWireKwargs(wire)}`;
  if (meta === undefined) return { text: `${head}}`, kwargs: wire };
  return { text: `${head},"meta":${JSON.stringify(toWireKwargs(meta))}}`, kwargs: wire };
}

/** The last envelope head made, for its task: a producer puts many jobs of one task in a row. */
let lastHead = { funcName: '', tube: '', text: '' };

/**
 * `{"func_name":...,"tube":...,"kwargs":`, quoted once per task rather than once per job (two escape
 * scans and a concatenation: about a sixth of encoding ~100-byte kwargs).
 */
function envelopeHead(funcName: string, tube: string): string {
  if (funcName === lastHead.funcName && tube === lastHead.tube && lastHead.text !== '') return lastHead.text;
  lastHead = { funcName, tube, text: `{"func_name":${quote(funcName)},"tube":${quote(tube)},"kwargs":` };
  return lastHead.text;
}

/**
 * Checks a call as {@link encodeEnvelope} does, without writing the body: throws what it would throw,
 * and answers the kwargs as the worker will see them.
 */
function checkCall(funcName: string, tube: string, kwargs: unknown): Record<string, unknown> {
  if (typeof funcName !== 'string' || funcName === '') {
    throw new TypeError(`Expected \`func_name\` to be a non-empty string, got ${typeof funcName}`);
  }
  if (typeof tube !== 'string') throw new TypeError(`Expected \`tube\` to be a string, got ${kindOf(tube)}`);
  if (!isPlainObject(kwargs)) {
    throw new TypeError(`Expected \`kwargs\` to be a plain object, got ${kindOf(kwargs)}`);
  }
  return toWireKwargs(kwargs);
}

/** Decodes a job body. Never throws: anything that is not an envelope becomes a {@link DecodeFailure}. */
export function decodeEnvelope(body: Uint8Array): DecodeResult {
  const text = bodyText(body);
  if (text === undefined) return failure('not-utf8', 'the body is not valid UTF-8');
  let value: unknown;
  let protoKey = false;
  try {
    // JSON.parse makes `__proto__` an own key; handed to a task, a shallow merge such as Object.assign
    // would then swap the target's prototype. Such a body is refused, not repaired. A reviver finds the
    // key however it is spelt, but slows parsing down several times, so it runs only for bodies that
    // could hold one: the name in clear, or any \u escape, which could spell it.
    value =
      text.includes('__proto__') || text.includes('\\u')
        ? JSON.parse(text, (key, nested: unknown) => {
            if (key === '__proto__') protoKey = true;
            return nested;
          })
        : JSON.parse(text);
  } catch (error) {
    return failure('not-json', `the body is not JSON (${(error as Error).message})`);
  }
  if (protoKey) return failure('proto-key', 'the body has a `__proto__` key, which could change the prototype of objects built from it');
  if (!isJsonObject(value)) {
    return failure('not-an-object', `the body is JSON but not an object (got ${kindOf(value)})`);
  }
  const funcName = Object.hasOwn(value, 'func_name') ? value.func_name : undefined;
  if (funcName === undefined) return failure('missing-func-name', 'the body has no `func_name`');
  if (typeof funcName !== 'string' || funcName === '') {
    return failure('bad-func-name', `\`func_name\` must be a non-empty string, got ${kindOf(funcName)}`);
  }
  const kwargs = Object.hasOwn(value, 'kwargs') ? value.kwargs : undefined;
  if (!isJsonObject(kwargs)) {
    return failure('bad-kwargs', `\`kwargs\` must be an object, got ${kindOf(kwargs)}`);
  }
  const tube = Object.hasOwn(value, 'tube') ? value.tube : undefined;
  if (tube !== undefined && typeof tube !== 'string') {
    return failure('bad-tube', `\`tube\` must be a string when present, got ${kindOf(tube)}`);
  }
  const meta = Object.hasOwn(value, 'meta') && isJsonObject(value.meta) ? value.meta : undefined;
  return { ok: true, envelope: meta === undefined ? { func_name: funcName, tube, kwargs } : { func_name: funcName, tube, kwargs, meta } };
}

function failure(reason: DecodeFailureReason, message: string): DecodeFailure {
  return { ok: false, reason, message };
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
