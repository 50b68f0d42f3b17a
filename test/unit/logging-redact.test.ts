// Secrets in job arguments stay out of logs: redacted copies, and job bodies shaped for a log field.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { encodeEnvelope } from '../../src/envelope/envelope.js';
import { createLogger, formatBodyForLog, REDACTED, redactKwargs } from '../../src/logging/logger.js';

describe('redactKwargs', () => {
  it('redacts the named keys at any depth, in arrays too, ignoring case, without touching the original', () => {
    const kwargs = { to: 'ann@example.com', Password: 'p1', nested: { api_KEY: { deep: 1 }, list: [{ password: 'p2' }, 'x'] } };
    const copy = redactKwargs(kwargs, ['password', 'API_key']);
    assert.deepEqual(copy, {
      to: 'ann@example.com',
      Password: REDACTED,
      nested: { api_KEY: REDACTED, list: [{ password: REDACTED }, 'x'] },
    });
    assert.equal(kwargs.Password, 'p1');
  });

  it('bounds depth and size', () => {
    let deep: unknown = 'bottom';
    for (let level = 0; level < 50; level++) deep = { level: deep };
    assert.match(JSON.stringify(redactKwargs(deep, [])), /"\[depth limit\]"/);
    const wide = redactKwargs(
      Array.from({ length: 5_000 }, (_, index) => index),
      [],
    ) as unknown[];
    assert.ok(wide.length < 1_100);
    assert.match(String(wide.at(-1)), /more items cut/);
    const many = redactKwargs(Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`k${index}`, index])), []);
    assert.match(String((many as Record<string, unknown>)['[cut]']), /more keys/);
  });

  it('never throws, keeps __proto__ a key, and marks cycles', () => {
    const hostile = new Proxy({}, { ownKeys: () => [], get: () => 1 });
    const trap = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('trap');
        },
      },
    );
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const proto = JSON.parse('{"__proto__":{"password":"p"}}') as unknown;
    assert.deepEqual(redactKwargs(hostile, ['x']), {});
    assert.equal(redactKwargs(trap, ['x']), '[unreadable]');
    assert.deepEqual(redactKwargs(circular, []), { self: '[circular]' });
    const copied = redactKwargs(proto, ['password']) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(copied), Object.prototype);
    assert.equal(JSON.stringify(copied), '{"__proto__":{"password":"[redacted]"}}');
    assert.doesNotThrow(() => redactKwargs({ a: 1 }, null as unknown as string[]));
  });
});

describe('formatBodyForLog', () => {
  it('redacts kwargs of a JSON envelope and caps the result', () => {
    const body = encodeEnvelope('welcome', 'emails', { to: 'ann@example.com', token: 's3cret', notes: 'n'.repeat(10_000) });
    const text = formatBodyForLog(body, { redact: ['token'], maxChars: 200 });
    assert.ok(text.startsWith('{"func_name":"welcome","tube":"emails","kwargs":{"to":"ann@example.com","token":"[redacted]","notes":"nnn'));
    assert.doesNotMatch(text, /s3cret/);
    assert.match(text, /more chars cut\]$/);
    assert.ok(text.length < 240);
  });

  it('shows a body that is not JSON as capped text with its control characters escaped', () => {
    const body = Buffer.from('not json\nFORGED\u202e\u0085 token=s', 'utf8');
    assert.equal(formatBodyForLog(body, { redact: ['token'], maxChars: 1_000 }), 'not json\\nFORGED\\u202e\\u0085 token=s');
    assert.equal(formatBodyForLog(Buffer.from('x'.repeat(50)), { redact: [], maxChars: 10 }), 'xxxxxxxxxx… [40 more chars cut]');
  });

  it('escapes in a JSON body what JSON leaves raw, so the field is safe in any logger', () => {
    const body = Buffer.from(JSON.stringify({ func_name: 'f', kwargs: { s: 'a\u2028b\u202e' } }));
    assert.equal(formatBodyForLog(body, { redact: [] }), '{"func_name":"f","kwargs":{"s":"a\\u2028b\\u202e"}}');
  });
});

describe('createLogger redact', () => {
  it("passes pino's redact paths through", () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        chunks.push(String(chunk));
        callback();
      },
    });
    createLogger({ destination, pretty: false, redact: ['kwargs.password'] }).info({ kwargs: { password: 'p', user: 'u' } }, 'put');
    assert.deepEqual((JSON.parse(chunks.join('')) as { kwargs: unknown }).kwargs, { password: '[Redacted]', user: 'u' });
  });
});
