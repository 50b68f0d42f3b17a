// The login form's bound on wrong tokens per client address, and `--trust-proxy`: which proxy's
// X-Forwarded-For and X-Forwarded-Proto are believed (the client's address for the bound, https for the
// cookie's Secure flag), over plain HTTP against the API server with a real beanstalkd.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOGIN_LIMITS, LoginLimiter } from '../../src/dashboard/login-limit.js';
import { type BeanstalkdServer, startBeanstalkd } from '../helpers/beanstalkd.js';
import { send, startApi, type TestApi } from '../helpers/http.js';

/** Posts the login form with `token`, from `forwardedFor` (an X-Forwarded-For value) when given. */
function login(api: TestApi, token: string, headers: Record<string, string> = {}) {
  return send(api.port, 'POST', '/login', null, {
    body: `token=${encodeURIComponent(token)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

describe('dashboard login: the bound on wrong tokens, and --trust-proxy', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server.stop();
  });

  it('refuses an address after too many wrong tokens, even with the right one, while others still log in', async (t) => {
    const api = await startApi(server.url, { trustProxy: ['127.0.0.1'] });
    t.after(() => api.close());
    const guesser = { 'x-forwarded-for': '203.0.113.7' };
    for (let i = 0; i < LOGIN_LIMITS.failures; i++) assert.equal((await login(api, `wrong-${i}`, guesser)).status, 401);
    const refused = await login(api, api.token, guesser);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers['retry-after']) > 0 && Number(refused.headers['retry-after']) <= LOGIN_LIMITS.windowMs / 1000);
    assert.match(refused.text, /Too many wrong tokens/);
    assert.equal(refused.headers['set-cookie'], undefined);
    // Another address (a different client behind the same proxy) is not held up by the guesser.
    const other = await login(api, api.token, { 'x-forwarded-for': '198.51.100.2' });
    assert.equal(other.status, 303, other.text);
  });

  it('believes X-Forwarded-Proto only from a trusted proxy: the cookie is Secure behind TLS, not on a claim', async (t) => {
    const trusting = await startApi(server.url, { trustProxy: ['127.0.0.0/8'] });
    t.after(() => trusting.close());
    const behindTls = await login(trusting, trusting.token, { 'x-forwarded-proto': 'https' });
    assert.equal(behindTls.status, 303);
    assert.match(String(behindTls.headers['set-cookie']), /; Secure$/);
    const plain = await login(trusting, trusting.token);
    assert.doesNotMatch(String(plain.headers['set-cookie']), /Secure/);

    const untrusting = await startApi(server.url);
    t.after(() => untrusting.close());
    const claimed = await login(untrusting, untrusting.token, { 'x-forwarded-proto': 'https' });
    assert.equal(claimed.status, 303);
    assert.doesNotMatch(String(claimed.headers['set-cookie']), /Secure/);
    // Nor is X-Forwarded-For: every wrong token counts against the real address, whatever it claims.
    for (let i = 0; i < LOGIN_LIMITS.failures; i++) {
      assert.equal((await login(untrusting, 'wrong', { 'x-forwarded-for': `192.0.2.${i}` })).status, 401);
    }
    assert.equal((await login(untrusting, untrusting.token, { 'x-forwarded-for': '192.0.2.200' })).status, 429);
  });

  it('the window ends and the count starts again; the map of addresses is bounded', () => {
    let now = 0;
    const limiter = new LoginLimiter(() => now);
    for (let i = 0; i < LOGIN_LIMITS.failures; i++) limiter.failed('a');
    assert.equal(limiter.retryAfterMs('a'), LOGIN_LIMITS.windowMs);
    now += LOGIN_LIMITS.windowMs - 1;
    assert.equal(limiter.retryAfterMs('a'), 1);
    now += 1;
    assert.equal(limiter.retryAfterMs('a'), 0);
    limiter.failed('a');
    assert.equal(limiter.retryAfterMs('a'), 0, 'one failure in a new window is allowed');
    for (let i = 0; i < LOGIN_LIMITS.failures; i++) limiter.failed('b');
    limiter.succeeded('b');
    assert.equal(limiter.retryAfterMs('b'), 0);
    for (let i = 0; i <= LOGIN_LIMITS.maxAddresses; i++) limiter.failed(`x${i}`);
    // The oldest were forgotten to make room; the newest are still counted.
    assert.equal(limiter.retryAfterMs('a'), 0);
    for (let i = 1; i < LOGIN_LIMITS.failures; i++) limiter.failed(`x${LOGIN_LIMITS.maxAddresses}`);
    assert.ok(limiter.retryAfterMs(`x${LOGIN_LIMITS.maxAddresses}`) > 0);
  });
});
