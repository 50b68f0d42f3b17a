/**
 * The wire format. Everything a producer encodes must arrive unchanged in a worker (or be refused at the
 * producer, with a path that says which value is the problem), and anything a hostile or buggy producer
 * puts in a body must decode to a reason, never to an exception that could stop a worker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { bodyText } from '../../src/envelope/body-text.js';
import { type DecodeFailureReason, decodeEnvelope, encodeCallText, encodeEnvelope } from '../../src/envelope/envelope.js';
import { MAX_KWARGS_DEPTH } from '../../src/envelope/json.js';

/**
 * Asserts that encoding `kwargs` throws a TypeError whose message names `path` as its subject and, when
 * given, says why (`because`), so that the right check fired rather than a neighbouring one.
 */
function assertRefused(kwargs: unknown, path: string, because?: RegExp): void {
  assert.throws(
    () => encodeEnvelope('task', 'tube', kwargs),
    (error: unknown) => {
      assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
      // "Cannot encode <path>:" — the colon makes sure `kwargs.a` is not matched by `kwargs.ab`.
      assert.ok(error.message.includes(`${path}:`), `expected the message to name ${path}, got: ${error.message}`);
      if (because) assert.match(error.message, because);
      return true;
    },
  );
}

/** Decodes a UTF-8 string body and asserts it fails with `reason`. */
function assertDecodeFails(body: string | Uint8Array, reason: DecodeFailureReason): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const result = decodeEnvelope(bytes);
  assert.equal(result.ok, false, `expected ${JSON.stringify(String(body))} to be refused`);
  if (result.ok) return;
  assert.equal(result.reason, reason);
  assert.equal(typeof result.message, 'string');
  assert.ok(result.message.length > 0, 'a failure carries a message for the logs');
}

describe('encodeEnvelope', () => {
  it('produces exactly {"func_name","tube","kwargs"} as UTF-8 JSON', () => {
    const body = encodeEnvelope('sendEmail', 'emails', { to: 'a@example.com', n: 2, nested: { ok: true, list: [1, 'é', null] } });
    assert.ok(Buffer.isBuffer(body), 'the body is a Buffer');
    // Byte-exact: other-language workers rely on these three keys and nothing else.
    assert.equal(
      body.toString('utf8'),
      '{"func_name":"sendEmail","tube":"emails","kwargs":{"to":"a@example.com","n":2,"nested":{"ok":true,"list":[1,"é",null]}}}',
    );
    assert.deepEqual(Object.keys(JSON.parse(body.toString('utf8'))), ['func_name', 'tube', 'kwargs']);
  });

  it('writes meta as a fourth member after kwargs, which decodes back, and nothing at all without it', () => {
    const { text } = encodeCallText('f', 't', { a: 1 }, { chain: { index: 1, of: 3 } });
    assert.equal(text, '{"func_name":"f","tube":"t","kwargs":{"a":1},"meta":{"chain":{"index":1,"of":3}}}');
    const decoded = decodeEnvelope(Buffer.from(text));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.envelope.meta, { chain: { index: 1, of: 3 } });
    assert.equal(encodeCallText('f', 't', { a: 1 }).text, '{"func_name":"f","tube":"t","kwargs":{"a":1}}');
    assert.throws(() => encodeCallText('f', 't', {}, { bad: 1n }), TypeError);
  });

  it('encodes empty kwargs and null-prototype kwargs', () => {
    assert.equal(encodeEnvelope('f', 't', {}).toString(), '{"func_name":"f","tube":"t","kwargs":{}}');
    const bare = Object.create(null) as Record<string, unknown>;
    bare.x = 1;
    assert.equal(encodeEnvelope('f', 't', bare).toString(), '{"func_name":"f","tube":"t","kwargs":{"x":1}}');
  });

  it('turns Dates into ISO-8601 strings, at any depth', () => {
    const when = new Date('2024-05-06T07:08:09.010Z');
    const body = encodeEnvelope('f', 't', { when, later: [{ at: when }] });
    const parsed = JSON.parse(body.toString('utf8')) as { kwargs: { when: unknown; later: { at: unknown }[] } };
    assert.equal(parsed.kwargs.when, '2024-05-06T07:08:09.010Z');
    assert.equal(parsed.kwargs.later[0]?.at, '2024-05-06T07:08:09.010Z');
  });

  it('accepts the same object reached twice when it is not circular (JSON just copies it)', () => {
    const shared = { id: 7 };
    const body = encodeEnvelope('f', 't', { a: shared, b: shared, list: [shared, shared] });
    assert.deepEqual(JSON.parse(body.toString('utf8')).kwargs, { a: { id: 7 }, b: { id: 7 }, list: [{ id: 7 }, { id: 7 }] });
  });

  it('refuses a BigInt, naming its path', () => {
    assertRefused({ user: { id: 10n } }, 'kwargs.user.id', /BigInt/);
  });

  it('refuses functions, naming their path', () => {
    assertRefused({ callback: () => 1 }, 'kwargs.callback', /function/);
    assertRefused({ items: [1, 2, function named() {}] }, 'kwargs.items[2]');
  });

  it('refuses symbol values and symbol keys', () => {
    assertRefused({ kind: Symbol('k') }, 'kwargs.kind', /symbol/);
    // A symbol key would vanish from the JSON; the path is the object that holds it.
    assertRefused({ [Symbol('hidden')]: 1, visible: 2 }, 'kwargs', /symbol keys/);
    assertRefused({ user: { [Symbol('hidden')]: 1 } }, 'kwargs.user');
  });

  it('refuses undefined values, also inside arrays', () => {
    assertRefused({ user: { id: undefined } }, 'kwargs.user.id', /undefined/);
    assertRefused({ items: [1, 2, undefined] }, 'kwargs.items[2]');
  });

  it('refuses NaN, Infinity and -Infinity', () => {
    assertRefused({ x: Number.NaN }, 'kwargs.x', /NaN/);
    assertRefused({ x: Number.POSITIVE_INFINITY }, 'kwargs.x', /Infinity/);
    assertRefused({ deep: { list: [0, Number.NEGATIVE_INFINITY] } }, 'kwargs.deep.list[1]', /-Infinity/);
  });

  it('refuses sparse arrays, naming the hole', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is under test.
    assertRefused({ items: [1, , 3] }, 'kwargs.items[1]', /hole/);
    assertRefused({ items: new Array(3) }, 'kwargs.items[0]', /hole/);
  });

  it('quotes keys that are not identifiers in the path', () => {
    assertRefused({ 'a b': undefined }, 'kwargs["a b"]');
    assertRefused({ outer: { '1x': 1n } }, 'kwargs.outer["1x"]');
  });

  it('refuses circular references', () => {
    const node: Record<string, unknown> = { name: 'loop' };
    node.self = node;
    assertRefused({ node }, 'kwargs.node.self', /circular/);
    const list: unknown[] = [];
    list.push(list);
    assertRefused({ list }, 'kwargs.list[0]', /circular/);
    const kwargs: Record<string, unknown> = {};
    kwargs.back = kwargs;
    assertRefused(kwargs, 'kwargs.back', /circular/);
  });

  it('refuses Map, Set and class instances, which JSON would flatten to {}', () => {
    assertRefused({ m: new Map([['a', 1]]) }, 'kwargs.m', /Map/);
    assertRefused({ s: new Set([1]) }, 'kwargs.s', /Set/);
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    assertRefused({ p: new Point(1, 2) }, 'kwargs.p', /Point/);
  });

  it('refuses kwargs that are not a plain object', () => {
    for (const kwargs of [[1, 2], null, 'text', 5, undefined, new Map(), new (class Options {})()]) {
      assert.throws(
        () => encodeEnvelope('f', 't', kwargs),
        (error: unknown) => error instanceof TypeError && error.message.includes('`kwargs`'),
        `kwargs ${String(kwargs)} should be refused`,
      );
    }
  });

  it('refuses an empty func_name', () => {
    assert.throws(() => encodeEnvelope('', 't', {}), TypeError);
  });
});

describe('encodeEnvelope: one read of each value, a bounded depth, the bytes of JSON.stringify', () => {
  /** `levels` objects nested in one another under the key `a`, kwargs itself being the first. */
  function nested(levels: number): Record<string, unknown> {
    let value: Record<string, unknown> = {};
    for (let i = 1; i < levels; i += 1) value = { a: value };
    return value;
  }

  it(`refuses kwargs nested deeper than ${MAX_KWARGS_DEPTH} levels with a TypeError naming the limit and the path`, () => {
    // 10,000 levels overflowed the stack: a RangeError with no path.
    assertRefused(nested(10_000), `kwargs${'.a'.repeat(MAX_KWARGS_DEPTH)}`, new RegExp(`deeper than ${MAX_KWARGS_DEPTH} levels`));
    // kwargs, list and three arrays are five levels: the 65th is 60 levels into the nested value.
    assertRefused({ list: [[[nested(MAX_KWARGS_DEPTH)]]] }, `kwargs.list[0][0][0]${'.a'.repeat(MAX_KWARGS_DEPTH - 4)}`, /deeper than/);
  });

  it(`accepts kwargs exactly ${MAX_KWARGS_DEPTH} levels deep`, () => {
    const body = encodeEnvelope('f', 't', nested(MAX_KWARGS_DEPTH));
    assert.equal(body.toString(), JSON.stringify({ func_name: 'f', tube: 't', kwargs: nested(MAX_KWARGS_DEPTH) }));
  });

  it('calls toJSON once, and sends what that call returned', () => {
    let calls = 0;
    // Answers a string the first time, a function (which JSON would silently drop) after.
    const fickle = { toJSON: () => (++calls === 1 ? 'checked' : () => 'never checked') };
    const body = encodeEnvelope('f', 't', { fickle });
    assert.equal(calls, 1);
    assert.equal(body.toString(), '{"func_name":"f","tube":"t","kwargs":{"fickle":"checked"}}');
  });

  it('reads each getter once, so a value that changes between reads cannot skip the checks', () => {
    let reads = 0;
    const kwargs = {
      get n(): unknown {
        reads += 1;
        return reads === 1 ? 1 : undefined;
      },
    };
    assert.equal(encodeEnvelope('f', 't', kwargs).toString(), '{"func_name":"f","tube":"t","kwargs":{"n":1}}');
    assert.equal(reads, 1);
  });

  it('passes toJSON its key, as JSON.stringify does', () => {
    const keys: string[] = [];
    const spy = { toJSON: (key: string) => keys.push(key) };
    encodeEnvelope('f', 't', { first: spy, list: [spy] });
    assert.deepEqual(keys, ['first', '0']);
  });

  it('writes -0 as 0, as JSON does (documented in the README)', () => {
    const body = encodeEnvelope('f', 't', { x: -0, list: [-0] });
    assert.equal(body.toString(), '{"func_name":"f","tube":"t","kwargs":{"x":0,"list":[0]}}');
    const decoded = decodeEnvelope(body);
    assert.ok(decoded.ok);
    assert.ok(Object.is(decoded.envelope.kwargs.x, 0), 'the worker receives +0');
  });

  it('writes the same bytes as JSON.stringify for everything it accepts', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.k = 'v';
    const cases: Record<string, unknown>[] = [
      { s: 'plain', q: 'a "quote" and a \\ backslash', c: '\u0000\u0001\n\t\u001f\u007f', u: 'é ü 漢字 😀', lone: '\ud800 x \udfff' },
      { ls: '\u2028\u2029', empty: '', key: { '': 1, 'a "b"': 2, '\n': 3, é: 4 } },
      { n: [0, 1, -1, 1.5, -1.5e-7, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, Number.MAX_VALUE] },
      { b: [true, false, null], nested: [[[]], {}, [{}], { a: [] }] },
      { 2: 'two', 1: 'one', z: 'z', a: 'a' },
      { bare, when: new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 6)), byJson: { toJSON: () => ({ x: [1, { y: 2 }] }) } },
    ];
    for (const kwargs of cases) {
      assert.equal(encodeEnvelope('fn "x"', 't/é', kwargs).toString('utf8'), JSON.stringify({ func_name: 'fn "x"', tube: 't/é', kwargs }));
    }
  });

  it('sends only own keys when Object.prototype has an enumerable property (the walk uses for...in)', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = { from: 'the prototype' };
    try {
      const kwargs = { a: 1, nested: { b: [{ c: 'x' }] } };
      assert.equal(encodeEnvelope('f', 't', kwargs).toString(), JSON.stringify({ func_name: 'f', tube: 't', kwargs }));
      // Not mistaken for an own undefined (refused) either.
      proto.polluted = undefined;
      assert.equal(encodeEnvelope('f', 't', { a: 1 }).toString(), '{"func_name":"f","tube":"t","kwargs":{"a":1}}');
    } finally {
      delete proto.polluted;
    }
  });

  it('refuses kwargs whose getter polluted Object.prototype while they were read', () => {
    const proto = Object.prototype as Record<string, unknown>;
    const kwargs = {
      get first() {
        proto.sneaked = { x: 1 };
        return 1;
      },
      later: { b: 2 },
    };
    try {
      assert.throws(() => encodeEnvelope('f', 't', kwargs), /Object\.prototype gained an enumerable property/);
    } finally {
      delete proto.sneaked;
    }
  });

  it('refuses NaN and writes -0 as 0 inside records of an array, naming the path', () => {
    assertRefused({ items: [{ a: 1 }, { a: Number.NaN }] }, 'kwargs.items[1].a', /NaN is not valid JSON/);
    assertRefused({ items: [{ a: 1 }, { a: -Infinity }] }, 'kwargs.items[1].a', /-Infinity/);
    assert.equal(
      encodeEnvelope('f', 't', { items: [{ z: -0, t: true, n: null }] }).toString(),
      '{"func_name":"f","tube":"t","kwargs":{"items":[{"z":0,"t":true,"n":null}]}}',
    );
  });

  it('refuses an enumerable symbol key but not a non-enumerable one, as JSON.stringify would drop only the first', () => {
    assertRefused({ inner: { [Symbol('s')]: 1 } }, 'kwargs.inner', /symbol keys/);
    const hidden = { a: 1 };
    Object.defineProperty(hidden, Symbol('hidden'), { value: 2, enumerable: false });
    assert.equal(encodeEnvelope('f', 't', { hidden }).toString(), '{"func_name":"f","tube":"t","kwargs":{"hidden":{"a":1}}}');
  });

  it('refuses a toJSON whose result JSON would flatten, naming the path', () => {
    assertRefused({ at: { toJSON: () => new Map([[1, 2]]) } }, 'kwargs.at', /a Map/);
    assertRefused({ at: { toJSON: () => 10n } }, 'kwargs.at', /BigInt/);
  });
});

describe('decodeEnvelope', () => {
  it('decodes ASCII and non-ASCII UTF-8 bodies alike, and only the bytes of a view', () => {
    const ascii = bodyText(Buffer.from('{"a":"plain"}'));
    assert.equal(ascii, '{"a":"plain"}');
    assert.equal(bodyText(Buffer.from('{"a":"é€😀"}', 'utf8')), '{"a":"é€😀"}');
    assert.equal(bodyText(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), undefined);
    const inside = Buffer.from('xx{"a":1}yy');
    assert.equal(bodyText(inside.subarray(2, 9)), '{"a":1}');
    assert.equal(bodyText(new Uint8Array(0)), '');
  });

  it('refuses bytes that are not UTF-8', () => {
    assertDecodeFails(Buffer.from([0xff, 0xfe]), 'not-utf8');
    // A valid JSON prefix does not rescue a body with a broken sequence inside.
    assertDecodeFails(Buffer.concat([Buffer.from('{"func_name":"'), Buffer.from([0xc3]), Buffer.from('","kwargs":{}}')]), 'not-utf8');
  });

  it('refuses text that is not JSON', () => {
    assertDecodeFails('delete 3', 'not-json');
    assertDecodeFails('', 'not-json');
    assertDecodeFails('{"func_name":"f",', 'not-json');
  });

  it('refuses JSON that is not an object', () => {
    assertDecodeFails('[{"func_name":"f","kwargs":{}}]', 'not-an-object');
    assertDecodeFails('null', 'not-an-object');
    assertDecodeFails('42', 'not-an-object');
    assertDecodeFails('"f"', 'not-an-object');
  });

  it('refuses a missing, non-string or empty func_name', () => {
    assertDecodeFails('{"kwargs":{}}', 'missing-func-name');
    assertDecodeFails('{"func_name":5,"kwargs":{}}', 'bad-func-name');
    assertDecodeFails('{"func_name":null,"kwargs":{}}', 'bad-func-name');
    assertDecodeFails('{"func_name":["f"],"kwargs":{}}', 'bad-func-name');
    assertDecodeFails('{"func_name":"","kwargs":{}}', 'bad-func-name');
  });

  it('refuses a body that tries to supply func_name through a __proto__ key', () => {
    assertDecodeFails('{"__proto__":{"func_name":"f"},"kwargs":{}}', 'proto-key');
  });

  it('refuses missing kwargs and kwargs that are an array, null or a string', () => {
    assertDecodeFails('{"func_name":"f"}', 'bad-kwargs');
    assertDecodeFails('{"func_name":"f","kwargs":[1]}', 'bad-kwargs');
    assertDecodeFails('{"func_name":"f","kwargs":null}', 'bad-kwargs');
    assertDecodeFails('{"func_name":"f","kwargs":"a=1"}', 'bad-kwargs');
  });

  it('refuses a tube that is present but not a string', () => {
    assertDecodeFails('{"func_name":"f","tube":5,"kwargs":{}}', 'bad-tube');
    assertDecodeFails('{"func_name":"f","tube":null,"kwargs":{}}', 'bad-tube');
  });

  it('accepts a body without a tube', () => {
    const result = decodeEnvelope(Buffer.from('{"func_name":"f","kwargs":{"a":1}}'));
    assert.deepEqual(result, { ok: true, envelope: { func_name: 'f', tube: undefined, kwargs: { a: 1 } } });
  });

  it('ignores fields it does not know, and hands meta over when it is an object', () => {
    const result = decodeEnvelope(Buffer.from('{"func_name":"f","tube":"t","kwargs":{},"meta":{"traceId":"x"},"v":2}'));
    assert.ok(result.ok, 'extra fields must not make the body undecodable');
    assert.deepEqual(result.envelope, { func_name: 'f', tube: 't', kwargs: {}, meta: { traceId: 'x' } });
    const odd = decodeEnvelope(Buffer.from('{"func_name":"f","kwargs":{},"meta":[1]}'));
    assert.ok(odd.ok, 'a meta that is not an object is ignored');
    assert.equal(odd.envelope.meta, undefined);
  });

  it('never throws, whatever the bytes', () => {
    const bodies: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0]),
      Buffer.from('{"func_name":"f","kwargs":{}}\u0000'),
      Buffer.from('{'.repeat(100_000)),
      Buffer.from('[]'),
      Buffer.from('true'),
      Buffer.from('{"constructor":{"prototype":{"x":1}},"func_name":"f","kwargs":{}}'),
    ];
    for (let i = 0; i < 256; i += 1) bodies.push(new Uint8Array([i, i ^ 0x55, 0x7b]));
    for (const body of bodies) {
      const result = decodeEnvelope(body);
      assert.equal(typeof result.ok, 'boolean');
    }
  });

  it('refuses a __proto__ key at any depth of kwargs, so no shallow merge in a task can swap a prototype', () => {
    assertDecodeFails('{"func_name":"f","kwargs":{"__proto__":{"isAdmin":true},"a":1}}', 'proto-key');
    assertDecodeFails('{"func_name":"f","kwargs":{"user":{"list":[{"__proto__":{}}]}}}', 'proto-key');
    assert.equal((Object.prototype as { isAdmin?: unknown }).isAdmin, undefined);
    // Ordinary keys that merely look special still decode.
    const result = decodeEnvelope(Buffer.from('{"func_name":"f","kwargs":{"constructor":"Bob","prototype":1}}'));
    assert.ok(result.ok, 'constructor and prototype are ordinary data keys');
  });

  it('refuses to encode an own __proto__ key', () => {
    const kwargs = JSON.parse('{"__proto__":{"x":1}}') as Record<string, unknown>;
    assert.throws(
      () => encodeEnvelope('f', 't', kwargs),
      (error: unknown) => error instanceof TypeError && /__proto__/.test(error.message),
    );
  });

  it('round-trips what encodeEnvelope produces', () => {
    const kwargs = {
      text: 'héllo \u2028 "quoted" \\ 😀',
      n: -1.5e-7,
      zero: 0,
      flag: false,
      none: null,
      list: [1, [2, [3]], { deep: 'yes' }],
      'odd key': { 'a.b': 1 },
    };
    const decoded = decodeEnvelope(encodeEnvelope('resize', 'images', kwargs));
    assert.deepEqual(decoded, { ok: true, envelope: { func_name: 'resize', tube: 'images', kwargs } });
  });

  it('round-trips a Date as its ISO string', () => {
    const decoded = decodeEnvelope(encodeEnvelope('f', 't', { at: new Date(0) }));
    assert.ok(decoded.ok, 'an encoded Date must decode');
    assert.equal(decoded.envelope.kwargs.at, '1970-01-01T00:00:00.000Z');
  });
});
