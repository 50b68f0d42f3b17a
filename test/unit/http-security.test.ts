// The HTTP API's guards as pure functions: the token check, the Host allow-list, the origin check, and
// the error replies' statuses. The same guards are exercised over real sockets in
// test/integration/http-security.test.ts.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, InvalidInputError, NotFoundError, UnavailableError } from '../../src/admin/errors.js';
import { errorReply, HttpError } from '../../src/http/errors.js';
import {
  checkToken,
  foreignOriginReason,
  generateToken,
  HostAllowList,
  splitHost,
  TOKEN_MIN_LENGTH,
  TokenVerifier,
} from '../../src/http/security.js';
import { safeJson } from '../../src/http/server.js';
import { isLoopbackHost } from '../../src/util/hosts.js';

describe('HTTP security: tokens', () => {
  it('a generated token is 43 URL-safe characters and never the same twice', () => {
    const tokens = new Set(Array.from({ length: 50 }, () => generateToken()));
    assert.equal(tokens.size, 50);
    for (const token of tokens) assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  });

  it('a configured token must be long enough and printable, and the message never quotes it', () => {
    assert.throws(
      () => checkToken('short-secret', 'BSWORKER_TOKEN'),
      (error: Error) => {
        assert.match(error.message, new RegExp(`at least ${TOKEN_MIN_LENGTH}`));
        assert.ok(!error.message.includes('short-secret'));
        return true;
      },
    );
    assert.throws(() => checkToken('a token with spaces inside', 'x'), /printable ASCII/);
    assert.equal(checkToken('0123456789abcdef', 'x'), '0123456789abcdef');
  });

  it('the verifier takes only `Bearer <the token>`, the scheme in any case', () => {
    const token = generateToken();
    const verifier = new TokenVerifier(token);
    assert.equal(verifier.verify(`Bearer ${token}`), true);
    assert.equal(verifier.verify(`bearer ${token}`), true);
    assert.equal(verifier.verify(undefined), false);
    assert.equal(verifier.verify(''), false);
    assert.equal(verifier.verify('Bearer'), false);
    assert.equal(verifier.verify(`Basic ${token}`), false);
    assert.equal(verifier.verify(token), false);
    assert.equal(verifier.verify(`Bearer ${token.slice(0, -1)}`), false, 'shorter');
    assert.equal(verifier.verify(`Bearer ${token}x`), false, 'longer');
    assert.equal(verifier.verify(`Bearer ${token} ${token}`), false);
  });
});

describe('HTTP security: Host and Origin', () => {
  it('loopback names are 127/8, ::1 and localhost; nothing else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', 'localhost.example.com', '128.0.0.1'])
      assert.equal(isLoopbackHost(host), false, host);
  });

  it('splitHost reads NAME, NAME:PORT and [v6]:PORT, and refuses the rest', () => {
    assert.deepEqual(splitHost('Example.COM:8080'), { name: 'example.com', port: 8080 });
    assert.deepEqual(splitHost('[::1]:80'), { name: '[::1]', port: 80 });
    assert.deepEqual(splitHost('api'), { name: 'api', port: undefined });
    for (const bad of ['', 'a:b', 'a:99999', 'a b', '::1', 'a/b:1']) assert.equal(splitHost(bad), undefined, bad);
  });

  it('the allow-list takes loopback names, the address listened on, and --allowed-host values', () => {
    const hosts = new HostAllowList('127.0.0.1', ['api.example.com', 'pinned.example.com:8443']);
    for (const host of [
      '127.0.0.1:7420',
      'localhost:7420',
      '[::1]:7420',
      'localhost:9999',
      'api.example.com',
      'API.example.com:7420',
      'pinned.example.com:8443',
    ])
      assert.equal(hosts.allows(host), true, host);
    for (const host of [
      undefined,
      '',
      'evil.example',
      'evil.example:7420',
      'pinned.example.com:8080',
      'pinned.example.com',
      '127.0.0.1.evil.example',
    ])
      assert.equal(hosts.allows(host), false, String(host));
    assert.equal(new HostAllowList('192.0.2.7').allows('192.0.2.7:7420'), true, 'the address listened on');
    assert.equal(new HostAllowList('127.0.0.1', ['*']).allows('anything.example'), true);
    assert.throws(() => new HostAllowList('127.0.0.1', ['a b']), TypeError);
  });

  it("a state-changing request's Origin must be the server's own, and Sec-Fetch-Site not another site", () => {
    const host = '127.0.0.1:7420';
    assert.equal(foreignOriginReason({ host }), undefined, 'no browser headers: curl, scripts');
    assert.equal(foreignOriginReason({ host, origin: 'http://127.0.0.1:7420' }), undefined);
    assert.equal(foreignOriginReason({ host: 'api.example.com', origin: 'https://api.example.com' }), undefined);
    assert.equal(foreignOriginReason({ host: 'api.example.com:80', origin: 'http://api.example.com' }), undefined);
    assert.equal(foreignOriginReason({ host, 'sec-fetch-site': 'same-origin' }), undefined);
    assert.equal(foreignOriginReason({ host, 'sec-fetch-site': 'none' }), undefined);
    for (const origin of ['http://evil.example', 'http://127.0.0.1:7421', 'null', 'file://', 'chrome-extension://abc', 'not a url'])
      assert.ok(foreignOriginReason({ host, origin }), origin);
    for (const site of ['cross-site', 'same-site', 'CROSS-SITE']) assert.ok(foreignOriginReason({ host, 'sec-fetch-site': site }), site);
  });
});

describe('HTTP errors', () => {
  it('each admin error class has its status, and keeps its code', () => {
    const status = (error: unknown): [number, string] => {
      const reply = errorReply(error);
      return [reply.statusCode, reply.body.error.code];
    };
    assert.deepEqual(status(new NotFoundError('JOB_NOT_FOUND', 'x')), [404, 'JOB_NOT_FOUND']);
    assert.deepEqual(status(new InvalidInputError('INVALID_TUBE', 'x')), [400, 'INVALID_TUBE']);
    assert.deepEqual(status(new ConflictError('JOB_RESERVED', 'x')), [409, 'JOB_RESERVED']);
    assert.deepEqual(status(new UnavailableError('SERVER_UNAVAILABLE', 'h:1', 'x')), [503, 'SERVER_UNAVAILABLE']);
    assert.deepEqual(status(new UnavailableError('OUTCOME_UNKNOWN', 'h:1', 'x')), [502, 'OUTCOME_UNKNOWN']);
    assert.deepEqual(status(new HttpError(421, 'MISDIRECTED_REQUEST', 'x')), [421, 'MISDIRECTED_REQUEST']);
  });

  it('an unexpected error is a 500 that says nothing of its message or stack', () => {
    const reply = errorReply(new Error('ENOENT /srv/app/secret.key'));
    assert.equal(reply.statusCode, 500);
    assert.equal(reply.unexpected, true);
    const text = JSON.stringify(reply.body);
    assert.ok(!text.includes('secret') && !text.includes('at '), text);
  });

  it('safeJson keeps the value and escapes what could read as markup', () => {
    const value = { raw: '<img src=x onerror=alert(1)> & \u2028' };
    const text = safeJson(value);
    assert.ok(!/[<>&\u2028]/.test(text), text);
    assert.deepEqual(JSON.parse(text), value);
  });
});
