/**
 * A JSON writer that checks as it writes: the kwargs of a job are read once, and what is written is
 * exactly what was checked. (Checking first and calling JSON.stringify after read every value twice: a
 * `toJSON` or a getter that answered differently the second time sent something never checked.)
 *
 * It writes what JSON.stringify would for everything it accepts, and refuses, with the path, whatever
 * JSON would silently drop or change. Written by hand rather than as a JSON.stringify replacer: a
 * replacer takes V8 off its fast path, and measured slower than checking and stringifying separately;
 * this writer measured faster than both (see the README's notes on the wire format).
 */

/**
 * How deep kwargs may nest, kwargs itself being level 1. The body (the envelope around kwargs) then
 * nests at most 65 deep: inside Ruby's default `JSON.parse` limit (`max_nesting` 100) and far inside
 * Python's recursion limit, so producers and workers in other languages can read every body we write;
 * and far above any real call. Without a bound, a value nested some thousands deep overflowed the stack
 * with a RangeError that named nothing.
 */
export const MAX_KWARGS_DEPTH = 64;

/** The containers on the path to the value being written, and their keys, for cycles and error paths. */
interface Walk {
  readonly ancestors: object[];
  /** keys[i] is the key of ancestors[i + 1] in ancestors[i]. */
  readonly keys: (string | number)[];
}

/**
 * Writes `kwargs` (a plain object) as JSON, or throws a TypeError naming the path (`kwargs.user.id`) of
 * the first value JSON would drop or change.
 */
export function writeCheckedJson(kwargs: object): string {
  return write(kwargs, undefined, { ancestors: [], keys: [] }, true);
}

// Strings JSON.stringify would escape: quotes, backslashes, control characters, and surrogates (a lone
// one is escaped; a pair is left to JSON.stringify too, which is rare enough not to matter).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: JSON escapes them.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `text` as a JSON string. */
export function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/**
 * Writes `value`, found under `key` in the innermost of `walk.ancestors` (`key` undefined for kwargs
 * itself). `toJSON` is applied as JSON.stringify applies it: once, to the value at this position, and
 * not again to what it returns.
 */
function write(value: unknown, key: string | number | undefined, walk: Walk, applyToJSON: boolean): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) {
        throw encodeError(walk, key, `${value} is not valid JSON (JSON.stringify would turn it into null)`);
      }
      // The same digits as JSON.stringify; -0 is written as 0, as JSON does (see the README).
      return `${value}`;
    case 'bigint':
      throw encodeError(walk, key, 'a BigInt is not valid JSON; pass it as a string or a number');
    case 'undefined':
      throw encodeError(walk, key, 'it is undefined, which JSON would drop; omit the key or use null');
    case 'function':
      throw encodeError(walk, key, 'a function cannot be sent in a job');
    case 'symbol':
      throw encodeError(walk, key, 'a symbol cannot be sent in a job');
  }
  if (value === null) return 'null';
  const object = value as object;
  if (applyToJSON && typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    if (object instanceof Date && Number.isNaN(object.getTime())) {
      throw encodeError(walk, key, 'it is an invalid Date, which JSON would turn into null');
    }
    // Date and other self-describing values: what toJSON returns is what JSON sends, read once here.
    const json: unknown = (object as { toJSON: (key: string) => unknown }).toJSON(key === undefined ? '' : String(key));
    return write(json, key, walk, false);
  }
  if (walk.ancestors.includes(object)) throw encodeError(walk, key, 'it is a circular reference');
  if (walk.ancestors.length >= MAX_KWARGS_DEPTH) {
    throw encodeError(
      walk,
      key,
      `kwargs nest deeper than ${MAX_KWARGS_DEPTH} levels, the limit bsworker keeps so that every JSON reader can decode the job; flatten the value or pass it as a string`,
    );
  }
  if (key !== undefined) walk.keys.push(key);
  walk.ancestors.push(object);
  const text = Array.isArray(object) ? writeArray(object, walk) : writeObject(object, walk);
  walk.ancestors.pop();
  if (key !== undefined) walk.keys.pop();
  return text;
}

function writeArray(array: readonly unknown[], walk: Walk): string {
  let text = '[';
  for (let i = 0; i < array.length; i += 1) {
    if (!(i in array)) throw encodeError(walk, i, 'the array has a hole, which JSON would turn into null');
    if (i > 0) text += ',';
    text += write(array[i], i, walk, true);
  }
  return `${text}]`;
}

function writeObject(object: object, walk: Walk): string {
  if (!isPlainObject(object)) {
    throw encodeError(
      walk,
      undefined,
      `${kindOf(object)} would lose its contents or type in JSON; convert it to a plain object or an array`,
    );
  }
  const symbols = Object.getOwnPropertySymbols(object);
  if (symbols.length > 0 && symbols.some((symbol) => Object.prototype.propertyIsEnumerable.call(object, symbol))) {
    throw encodeError(walk, undefined, 'it has symbol keys, which JSON would drop');
  }
  let text = '{';
  let first = true;
  for (const key in object) {
    // for...in also walks the prototype: a plain object's is Object.prototype, which a polluted global
    // could give enumerable keys.
    if (!Object.hasOwn(object, key)) continue;
    if (key === '__proto__') throw encodeError(walk, key, 'a `__proto__` key is refused by every bsworker worker');
    text += `${first ? '' : ','}${quote(key)}:${write((object as Record<string, unknown>)[key], key, walk, true)}`;
    first = false;
  }
  return `${text}}`;
}

/**
 * The error for the value under `key` in the innermost container of `walk` (or for that container
 * itself when `key` is undefined). The path is built here, only when something fails.
 */
function encodeError(walk: Walk, key: string | number | undefined, reason: string): TypeError {
  let path = 'kwargs';
  for (const segment of walk.keys) path = child(path, segment);
  if (key !== undefined) path = child(path, key);
  return new TypeError(`Cannot encode ${path}: ${reason}`);
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
