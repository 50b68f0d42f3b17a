// toError and the err serializer are total: no thrown value, however hostile, makes them (or a log call) throw.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, serializeError, toError, UNDESCRIBABLE } from '../../src/logging/logger.js';

const throwing = (): never => {
  throw new Error('trap');
};

/** A Proxy all of whose traps throw, so even `instanceof` (getPrototypeOf) throws. */
const allTrapsThrow = new Proxy(
  {},
  {
    get: throwing,
    getPrototypeOf: throwing,
    ownKeys: throwing,
    has: throwing,
    getOwnPropertyDescriptor: throwing,
    set: throwing,
    defineProperty: throwing,
    deleteProperty: throwing,
    isExtensible: throwing,
    preventExtensions: throwing,
    setPrototypeOf: throwing,
    apply: throwing,
    construct: throwing,
  },
);

const revoked = Proxy.revocable({}, {});
revoked.revoke();

/** An object whose toJSON and Symbol.toStringTag both throw. */
const toJsonAndTagThrow = {
  toJSON: throwing,
  get [Symbol.toStringTag](): string {
    return throwing();
  },
};

/** An Error whose message, stack and name getters throw. */
const gettersThrow = new Error('hidden');
for (const key of ['stack', 'message', 'name']) Object.defineProperty(gettersThrow, key, { get: throwing });

/** An Error proxy: `instanceof Error` is true, every property read throws. */
const errorProxy = new Proxy(new Error('inner'), { get: throwing, ownKeys: throwing });

const circular: Record<string, unknown> = { a: 1 };
circular.self = circular;

const NASTY: ReadonlyArray<readonly [string, unknown]> = [
  ['a Proxy whose traps all throw', allTrapsThrow],
  ['a revoked Proxy', revoked.proxy],
  ['an object whose toJSON and Symbol.toStringTag throw', toJsonAndTagThrow],
  ['an Error whose getters throw', gettersThrow],
  ['an Error Proxy whose reads throw', errorProxy],
  ['a circular object', circular],
  ['a BigInt', 10n],
  ['a symbol', Symbol('s')],
  ['undefined', undefined],
  ['null', null],
  ['a function', function named() {}],
  ['an object with no prototype', Object.create(null)],
];

describe('toError', () => {
  for (const [label, value] of NASTY) {
    it(`returns an Error for ${label}, whose message can be read`, () => {
      const error = toError(value);
      assert.ok(error instanceof Error);
      assert.equal(typeof error.message, 'string');
      assert.equal(typeof error.stack, 'string');
      if (error !== value) assert.equal(error.cause, value, 'the original value is the cause');
    });
  }

  it('describes what it can and says so when it cannot', () => {
    assert.equal(toError('plain').message, 'non-Error thrown: plain');
    assert.equal(toError({ code: 42 }).message, 'non-Error thrown: {"code":42}');
    assert.equal(toError(10n).message, 'non-Error thrown: 10n');
    assert.equal(toError(circular).message, 'non-Error thrown: {"a":1,"self":"[circular]"}');
    assert.equal(toError(allTrapsThrow).message, UNDESCRIBABLE);
    assert.equal(toError(revoked.proxy).message, UNDESCRIBABLE);
    assert.equal(toError(toJsonAndTagThrow).message, UNDESCRIBABLE);
    assert.match(toError(gettersThrow).message, /could not be read/);
  });

  it('returns an ordinary Error as it is', () => {
    const error = new RangeError('r');
    assert.equal(toError(error), error);
  });
});

describe('the err serializer', () => {
  for (const [label, value] of NASTY) {
    it(`never throws on ${label}, as err or error, and the log call writes its line`, () => {
      const chunks: string[] = [];
      const destination = new Writable({
        write(chunk, _encoding, callback) {
          chunks.push(String(chunk));
          callback();
        },
      });
      const logger = createLogger({ destination, pretty: false });
      logger.error({ err: value }, 'failed');
      logger.error({ error: value }, 'failed');
      const serialized = serializeError(value);
      assert.equal(typeof serialized.message, 'string');
      const lines = chunks.join('').split('\n').filter(Boolean);
      assert.equal(lines.length, 2);
      for (const line of lines)
        assert.equal(typeof (JSON.parse(line) as { err?: { message: string }; error?: { message: string } }), 'object');
    });
  }

  it('says which part of an error could not be read', () => {
    const serialized = serializeError(gettersThrow);
    assert.match(serialized.message, /could not be read/);
    const cause = serialized.cause as { message: string };
    assert.equal(cause.message, '[the message could not be read]');
  });
});

describe('a log call', () => {
  it('never throws, even when pino itself reads a hostile value before any serializer', () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        chunks.push(String(chunk));
        callback();
      },
    });
    const logger = createLogger({ destination, pretty: false });
    // No message: pino reads err.message itself. A Proxy as the object: pino runs instanceof on it.
    assert.doesNotThrow(() => logger.error({ err: gettersThrow }));
    assert.doesNotThrow(() => logger.error(allTrapsThrow as object, 'failed'));
    const lines = chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; logFailure?: { message: string } });
    assert.equal(lines.length, 2);
    for (const line of lines) assert.equal(line.msg, 'a log call threw; its line was replaced by this one');
    assert.equal(lines[0]?.logFailure?.message, 'trap');
  });
});
