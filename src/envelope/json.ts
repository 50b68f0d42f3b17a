/**
 * kwargs as JSON will carry them. {@link toWireKwargs} reads the kwargs of a job once, refuses, with the
 * path, whatever JSON would silently drop or change, and answers a copy made only of plain objects,
 * arrays and JSON primitives: the value a worker will decode. The body is `JSON.stringify` of that copy,
 * so what is sent is exactly what was checked (a `toJSON` or a getter that answered differently the
 * second time reads nothing twice: the copy holds the first answer, and JSON.stringify never sees the
 * original).
 *
 * Why a copy, and not a check of the original followed by JSON.stringify of it: the stringify would read
 * every getter, Proxy trap and `toJSON` a second time, and only descriptors tell a getter from a value,
 * which costs four times the stringify itself. Why not a writer in JS, as before: string building in JS
 * measured 2 to 3.3 times JSON.stringify on arrays of records; checking while copying, then letting V8's
 * serializer write the copy, measured about 1.4 times (see the README's notes on the wire format).
 */

/**
 * How deep kwargs may nest, kwargs itself being level 1. The body (the envelope around kwargs) then
 * nests at most 65 deep: inside Ruby's default `JSON.parse` limit (`max_nesting` 100) and far inside
 * Python's recursion limit, so producers and workers in other languages can read every body we write;
 * and far above any real call. Without a bound, a value nested some thousands deep overflowed the stack
 * with a RangeError that named nothing.
 */
export const MAX_KWARGS_DEPTH = 64;

/**
 * A value JSON would drop or change. Thrown where it is found with an empty path; each container on the
 * way out adds the key it was reading, so no path is kept while nothing fails.
 */
class Refusal {
  /** Keys from the refused value up to kwargs (innermost first). */
  readonly keys: (string | number)[] = [];
  constructor(readonly reason: string) {}
}

/**
 * Checks `kwargs` (a plain object) and answers it as the worker will decode it: a copy of plain objects,
 * arrays, strings, finite numbers (`-0` as `0`), booleans and null, each value of the original read
 * once, each `toJSON` applied once. Throws a TypeError naming the path (`kwargs.user.id`) of the first
 * value JSON would drop or change. Errors thrown by a getter or a `toJSON` propagate unchanged.
 */
export function toWireKwargs(kwargs: object): Record<string, unknown> {
  let wire: unknown;
  const polluted = prototypePolluted();
  // Saved and restored: a getter may itself encode kwargs.
  const outer = ownKeysOnly;
  try {
    ownKeysOnly = polluted;
    wire = copyValue(kwargs, '', 0, [], true);
  } catch (error) {
    throw changedPrototype(polluted) ?? (error instanceof Refusal ? encodeError(error) : error);
  } finally {
    ownKeysOnly = outer;
  }
  const changed = changedPrototype(polluted);
  if (changed) throw changed;
  if (!isPlainObject(wire)) {
    // Only a toJSON on kwargs itself can get here: a body whose kwargs are not an object decodes nowhere.
    throw new TypeError(`Expected \`kwargs.toJSON()\` to return a plain object, got ${kindOf(wire)}`);
  }
  return wire;
}

/**
 * A getter or toJSON that gave Object.prototype an enumerable property during the walk: later copies may
 * have taken the inherited key for their own (or been refused because of it). A second walk would read
 * every getter again, so the kwargs are refused.
 */
function changedPrototype(pollutedBefore: boolean): TypeError | undefined {
  if (pollutedBefore || !prototypePolluted()) return undefined;
  return new TypeError(
    'Cannot encode kwargs: Object.prototype gained an enumerable property while they were read (a getter or a toJSON changed it)',
  );
}

// Strings JSON.stringify would escape: quotes, backslashes, control characters, and surrogates (a lone
// one is escaped; a pair is left to JSON.stringify too, which is rare enough not to matter).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: JSON escapes them.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `text` as a JSON string. */
export function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** A string this long at the top of kwargs is quoted by hand (see {@link writeWireKwargs}). */
const LONG_STRING = 512;

/**
 * `wire` (from {@link toWireKwargs}) as JSON. One JSON.stringify, unless a top-level value is a long
 * string (a text, an HTML page, base64): then each top-level value is written on its own and the long
 * strings are quoted by {@link quote}, which measured about half of JSON.stringify's cost on a long
 * string (one scan for characters to escape, and no copy: Buffer.from joins the parts once).
 */
export function writeWireKwargs(wire: Record<string, unknown>): string {
  let long = false;
  // for...in, not Object.keys: no array for the common case (a copy has no inherited keys unless
  // Object.prototype is polluted, and an inherited value is only looked at, never written).
  for (const key in wire) {
    const value = wire[key];
    if (typeof value === 'string' && value.length >= LONG_STRING) {
      long = true;
      break;
    }
  }
  if (!long) return JSON.stringify(wire);
  let text = '{';
  for (const [index, key] of Object.keys(wire).entries()) {
    const value = wire[key];
    text += `${index === 0 ? '' : ','}${quote(key)}:${typeof value === 'string' ? quote(value) : JSON.stringify(value)}`;
  }
  return `${text}}`;
}

/**
 * `value`, found under `key` at `depth` (the number of containers around it), as JSON will carry it.
 * `toJSON` is applied as JSON.stringify applies it: once, to the value at this position, and not again
 * to what it returns.
 */
function copyValue(value: unknown, key: string | number, depth: number, ancestors: object[], applyToJSON: boolean): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new Refusal(notFinite(value));
      // -0 is written as 0, as JSON does (see the README); the copy says so too, as the worker will see it.
      return value === 0 ? 0 : value;
    case 'bigint':
      throw new Refusal('a BigInt is not valid JSON; pass it as a string or a number');
    case 'undefined':
      throw new Refusal('it is undefined, which JSON would drop; omit the key or use null');
    case 'function':
      throw new Refusal('a function cannot be sent in a job');
    case 'symbol':
      throw new Refusal('a symbol cannot be sent in a job');
  }
  if (value === null) return null;
  const object = value as object;
  if (applyToJSON && typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    if (object instanceof Date && Number.isNaN(object.getTime())) {
      throw new Refusal('it is an invalid Date, which JSON would turn into null');
    }
    // Date and other self-describing values: what toJSON returns is what JSON sends, read once here.
    const json: unknown = (object as { toJSON: (key: string) => unknown }).toJSON(String(key));
    return copyValue(json, key, depth, ancestors, false);
  }
  // ancestors[0 .. depth - 1] are the containers around this one; later slots are stale, never read.
  for (let i = 0; i < depth; i += 1) if (ancestors[i] === object) throw new Refusal('it is a circular reference');
  if (depth >= MAX_KWARGS_DEPTH) {
    throw new Refusal(
      `kwargs nest deeper than ${MAX_KWARGS_DEPTH} levels, the limit bsworker keeps so that every JSON reader can decode the job; flatten the value or pass it as a string`,
    );
  }
  ancestors[depth] = object;
  return Array.isArray(object) ? copyArray(object, depth + 1, ancestors) : copyObject(object, depth + 1, ancestors);
}

/** Why NaN and the infinities are refused. */
function notFinite(value: number): string {
  return `${value} is not valid JSON (JSON.stringify would turn it into null)`;
}

function copyArray(array: readonly unknown[], depth: number, ancestors: object[]): unknown[] {
  // Built by push, not `new Array(length)`: a packed array is V8's fast case, and a huge sparse length
  // allocates nothing before its first hole is refused.
  const copy: unknown[] = [];
  const length = array.length;
  let i = 0;
  try {
    for (; i < length; i += 1) {
      const element = array[i];
      if (typeof element === 'string') copy.push(element);
      else if (element === undefined && !(i in array)) throw new Refusal('the array has a hole, which JSON would turn into null');
      else copy.push(copyValue(element, i, depth, ancestors, true));
    }
  } catch (error) {
    throw inside(error, i);
  }
  return copy;
}

function copyObject(object: object, depth: number, ancestors: object[]): Record<string, unknown> {
  if (!isPlainObject(object)) {
    throw new Refusal(`${kindOf(object)} would lose its contents or type in JSON; convert it to a plain object or an array`);
  }
  // The one read of the original: a spread calls each getter (or Proxy trap) once and keeps the answer
  // as a plain value; own enumerable keys only, in JSON.stringify's order, `__proto__` as a plain key.
  const copy: Record<string, unknown> = { ...object };
  // The spread copies enumerable symbol keys too (and only those): JSON would drop them.
  if (Object.getOwnPropertySymbols(copy).length > 0) throw new Refusal('it has symbol keys, which JSON would drop');
  // for...in over the copy, not Object.keys: no keys array per object (V8 walks its enum cache), which
  // measured about a third of the checking walk on arrays of records. It also visits inherited
  // enumerable keys, which JSON ignores: only a polluted Object.prototype has any (the copy's prototype),
  // and then `ownKeysOnly` makes each key prove it is the copy's own.
  let key = '';
  try {
    for (key in copy) {
      if (ownKeysOnly && !Object.hasOwn(copy, key)) continue;
      if (key === '__proto__') throw new Refusal('a `__proto__` key is refused by every bsworker worker');
      const value = copy[key];
      // Leaves are checked here, without a call: records are mostly strings, numbers and booleans.
      switch (typeof value) {
        case 'string':
        case 'boolean':
          continue;
        case 'number':
          // -0 is written as 0, as JSON does; the copy says so too (=== cannot tell them apart).
          if (value === 0) copy[key] = 0;
          else if (value - value !== 0) throw new Refusal(notFinite(value));
          continue;
      }
      if (value === null) continue;
      // Containers become their copies.
      copy[key] = copyValue(value, key, depth, ancestors, true);
    }
  } catch (error) {
    throw inside(error, key);
  }
  return copy;
}

/**
 * True while a walk must check that each key for...in finds is own: Object.prototype has an enumerable
 * property (someone assigned `Object.prototype.x`), which every plain object would otherwise appear to hold.
 */
let ownKeysOnly = false;

/** True when Object.prototype has an enumerable property, which for...in would show on every plain object. */
function prototypePolluted(): boolean {
  for (const _ in EMPTY) return true;
  return false;
}
const EMPTY: object = Object.freeze({});

/** Adds `key` to the path of a refusal on its way out; other errors pass through unchanged. */
function inside(error: unknown, key: string | number): unknown {
  if (error instanceof Refusal) error.keys.push(key);
  return error;
}

function encodeError(refusal: Refusal): TypeError {
  let path = 'kwargs';
  for (let i = refusal.keys.length - 1; i >= 0; i -= 1) path = child(path, refusal.keys[i] as string | number);
  return new TypeError(`Cannot encode ${path}: ${refusal.reason}`);
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** True for `{}` and `Object.create(null)`: the objects JSON writes without losing anything. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A few words for the type of `value`, for error messages. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return typeof value;
}
