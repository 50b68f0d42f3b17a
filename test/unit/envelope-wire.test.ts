/**
 * The encoder's copy: each value of the caller's kwargs is read once, JSON.stringify only ever sees the
 * checked copy, and that copy is what a worker decodes (so a schema may check it instead of a parse of
 * the body).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { decodeEnvelope, encodeCall, encodeCallText, encodeEnvelope } from '../../src/envelope/envelope.js';

/** Kwargs with every kind of value JSON carries, and the values it changes on the way (Date, -0, toJSON). */
function richKwargs(): Record<string, unknown> {
  const bare = Object.create(null) as Record<string, unknown>;
  bare.k = 'v';
  const shared = { id: 1 };
  return {
    s: 'a "quote" \\ \n \u0000 é 😀 \ud800 lone',
    n: [0, -0, 1.5, -1e-7, 1e21, 2 ** 53 + 2, Number.MAX_VALUE],
    b: [true, false, null],
    nested: { deep: [[{ x: [] }], {}], bare },
    2: 'two',
    1: 'one',
    when: new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 6)),
    byJson: { toJSON: (key: string) => ({ key, list: [new Date(0), -0] }) },
    twice: [shared, shared],
    long: `${'x'.repeat(600)}"\u2028${'é'.repeat(600)}`,
  };
}

describe('encodeCall', () => {
  it('answers the kwargs exactly as the worker decodes them (-0 as 0, Dates as strings, toJSON applied)', () => {
    const { body, kwargs } = encodeCall('f', 't', richKwargs());
    const decoded = decodeEnvelope(body);
    assert.ok(decoded.ok, 'the body decodes');
    // deepStrictEqual tells -0 from 0, and compares prototypes: the copy is what JSON.parse builds.
    assert.deepStrictEqual(kwargs, decoded.envelope.kwargs);
    assert.ok(Object.is((kwargs.n as number[])[1], 0), '-0 is 0 in the copy, as in the body');
  });

  it('hands back fresh objects: changing them changes neither the body nor the caller’s kwargs', () => {
    const original = { list: [1, { a: 2 }], text: 'x' };
    const { body, kwargs } = encodeCall('f', 't', original);
    const before = body.toString();
    (kwargs.list as unknown[]).push(3);
    kwargs.text = 'changed';
    assert.deepEqual(original, { list: [1, { a: 2 }], text: 'x' });
    assert.equal(body.toString(), before);
    assert.notEqual(kwargs.list, original.list);
  });

  it('writes long top-level strings, quoted by hand, as JSON.stringify would', () => {
    const cases: Record<string, unknown>[] = [
      { text: 'a'.repeat(5_000) },
      { text: `${'a'.repeat(600)}"\\\n\u0001\u2028\ud800`, n: -0, list: [1, 'b'], other: 'short' },
      { 'key "q"': 'é'.repeat(1_000), more: { inner: 'z'.repeat(1_000) } },
    ];
    for (const kwargs of cases) {
      assert.equal(encodeEnvelope('f', 't', kwargs).toString('utf8'), JSON.stringify({ func_name: 'f', tube: 't', kwargs }));
    }
  });

  it('encodeCallText is the body as text', () => {
    const kwargs = richKwargs();
    assert.equal(encodeCallText('f', 't', kwargs).text, encodeEnvelope('f', 't', kwargs).toString('utf8'));
  });
});

describe('encodeEnvelope reads each value once', () => {
  it('calls each getter once per place its object appears, at any depth', () => {
    let reads = 0;
    const counter = {
      get value(): number {
        reads += 1;
        return reads;
      },
    };
    const body = encodeEnvelope('f', 't', { list: [counter, { inner: counter }] });
    assert.equal(reads, 2);
    assert.equal(body.toString(), '{"func_name":"f","tube":"t","kwargs":{"list":[{"value":1},{"inner":{"value":2}}]}}');
  });

  it('reads an array index getter once', () => {
    let reads = 0;
    const list: unknown[] = [];
    Object.defineProperty(list, 0, {
      enumerable: true,
      get() {
        reads += 1;
        return reads === 1 ? 1 : () => 1;
      },
    });
    assert.equal(encodeEnvelope('f', 't', { list }).toString(), '{"func_name":"f","tube":"t","kwargs":{"list":[1]}}');
    assert.equal(reads, 1);
  });

  it('reads each property of a Proxy once, and sends what it answered', () => {
    const reads = new Map<string | symbol, number>();
    const target = { a: 1, b: 'two' };
    const proxy = new Proxy(target, {
      get(object, key, receiver) {
        const count = (reads.get(key) ?? 0) + 1;
        reads.set(key, count);
        if (key === 'a' && count > 1) return Number.NaN;
        return Reflect.get(object, key, receiver);
      },
    });
    assert.equal(encodeEnvelope('f', 't', { proxy }).toString(), '{"func_name":"f","tube":"t","kwargs":{"proxy":{"a":1,"b":"two"}}}');
    assert.equal(reads.get('a'), 1);
    assert.equal(reads.get('b'), 1);
  });

  it('refuses a toJSON on kwargs itself that returns something other than a plain object', () => {
    assert.throws(() => encodeEnvelope('f', 't', { toJSON: () => 'text' }), /kwargs\.toJSON\(\)/);
    assert.equal(encodeEnvelope('f', 't', { toJSON: () => ({ a: 1 }) }).toString(), '{"func_name":"f","tube":"t","kwargs":{"a":1}}');
  });

  it('lets an error thrown by a getter through, unchanged', () => {
    const failure = new Error('getter failed');
    const kwargs = {
      get broken(): unknown {
        throw failure;
      },
    };
    assert.throws(
      () => encodeEnvelope('f', 't', { nested: kwargs }),
      (error: unknown) => error === failure,
    );
  });
});
