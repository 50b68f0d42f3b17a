/**
 * The wire format, encoded and decoded here and nowhere else.
 *
 * A job body is UTF-8 JSON `{"func_name": string, "tube": string, "kwargs": object}`, the format of the
 * original Python design, so producers and workers in other languages interoperate. Decoders ignore
 * fields they do not know (room for `meta`).
 */

import { isUtf8 } from 'node:buffer';

/** A decoded job body. */
export interface Envelope {
  /** The registered name of the task to run. */
  readonly func_name: string;
  /** The tube the producer meant the job for (the worker trusts the reserved tube, see the README). */
  readonly tube: string | undefined;
  /** The task's keyword arguments. */
  readonly kwargs: Record<string, unknown>;
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

/**
 * Encodes a call as a job body. Throws a TypeError naming the path (`kwargs.user.id`) when `kwargs`
 * holds something JSON would silently change or cannot encode: BigInt, functions, symbols, `undefined`,
 * NaN and Infinity, sparse arrays, symbol keys, circular references, and objects such as Map, Set or
 * class instances that JSON would flatten to `{}`. Dates (and anything with `toJSON`) are encoded
 * through `toJSON`, so a Date arrives as an ISO-8601 string.
 */
export function encodeEnvelope(funcName: string, tube: string, kwargs: unknown): Buffer {
  if (typeof funcName !== 'string' || funcName === '') {
    throw new TypeError(`Expected \`func_name\` to be a non-empty string, got ${typeof funcName}`);
  }
  if (!isPlainObject(kwargs)) {
    throw new TypeError(`Expected \`kwargs\` to be a plain object, got ${kindOf(kwargs)}`);
  }
  assertEncodable(kwargs, 'kwargs', []);
  return Buffer.from(JSON.stringify({ func_name: funcName, tube, kwargs }), 'utf8');
}

/** Decodes a job body. Never throws: anything that is not an envelope becomes a {@link DecodeFailure}. */
export function decodeEnvelope(body: Uint8Array): DecodeResult {
  if (!isUtf8(body)) return failure('not-utf8', 'the body is not valid UTF-8');
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
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
  return { ok: true, envelope: { func_name: funcName, tube, kwargs } };
}

function failure(reason: DecodeFailureReason, message: string): DecodeFailure {
  return { ok: false, reason, message };
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return typeof value;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Walks `value` the way JSON.stringify will and throws at the first thing it would drop or change.
 * `ancestors` holds the objects on the current path: a repeat there is a cycle (a shared, non-circular
 * reference is fine: JSON just copies it).
 */
function assertEncodable(value: unknown, path: string, ancestors: object[]): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot encode ${path}: ${value} is not valid JSON (JSON.stringify would turn it into null)`);
      }
      return;
    case 'bigint':
      throw new TypeError(`Cannot encode ${path}: a BigInt is not valid JSON; pass it as a string or a number`);
    case 'undefined':
      throw new TypeError(`Cannot encode ${path}: it is undefined, which JSON would drop; omit the key or use null`);
    case 'function':
      throw new TypeError(`Cannot encode ${path}: a function cannot be sent in a job`);
    case 'symbol':
      throw new TypeError(`Cannot encode ${path}: a symbol cannot be sent in a job`);
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.includes(object)) throw new TypeError(`Cannot encode ${path}: it is a circular reference`);

  if (object instanceof Date && Number.isNaN(object.getTime())) {
    throw new TypeError(`Cannot encode ${path}: it is an invalid Date, which JSON would turn into null`);
  }
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    // Date and other self-describing values: encode what toJSON returns, which is what JSON sends.
    const json: unknown = (object as { toJSON: (key: string) => unknown }).toJSON('');
    if (json !== object) assertEncodable(json, path, [...ancestors, object]);
    return;
  }

  ancestors.push(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i += 1) {
      if (!(i in object)) throw new TypeError(`Cannot encode ${child(path, i)}: the array has a hole, which JSON would turn into null`);
      assertEncodable(object[i], child(path, i), ancestors);
    }
  } else {
    if (!isPlainObject(object)) {
      throw new TypeError(
        `Cannot encode ${path}: ${kindOf(object)} would lose its contents or type in JSON; convert it to a plain object or an array`,
      );
    }
    if (Object.getOwnPropertySymbols(object).some((symbol) => Object.prototype.propertyIsEnumerable.call(object, symbol))) {
      throw new TypeError(`Cannot encode ${path}: it has symbol keys, which JSON would drop`);
    }
    for (const key of Object.keys(object)) {
      if (key === '__proto__')
        throw new TypeError(`Cannot encode ${child(path, key)}: a \`__proto__\` key is refused by every bsworker worker`);
      assertEncodable((object as Record<string, unknown>)[key], child(path, key), ancestors);
    }
  }
  ancestors.pop();
}
