// The HTTP API's security defaults over real sockets, each case checked by what the server did (or did
// not do) to beanstalkd: the address it listens on, the token, foreign origins and hosts, and bodies
// over the limit, refused before they are read.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Admin } from '../../src/admin/admin.js';
import { createApiServer, ListenRefusedError } from '../../src/http/server.js';
import { type BeanstalkdServer, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope } from '../helpers/cli.js';
import { assertError, assertJsonHeaders, startApi, type TestApi } from '../helpers/http.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 20_000 };
/** Small, so the oversized bodies stay small too. */
const BODY_LIMIT = 4_096;

/** What came back on a raw socket, and how much of the body had been written when it came. */
interface RawReply {
  readonly status: number;
  readonly text: string;
  readonly bodyBytesSent: number;
}

/**
 * Writes `head` on a raw socket, then (for a chunked body) 1 KiB chunks one after another, never ending
 * the body, until the server answers; resolves with its answer. The server must answer before the body
 * is complete, since it never is.
 */
function rawRequest(port: number, head: string, chunked: boolean): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    let sent = 0;
    let answered = false;
    const timer = setTimeout(() => finish(new Error(`no answer; ${sent} body bytes sent`)), 10_000);
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]), text: reply, bodyBytesSent: sent });
    };
    const chunk = `400\r\n${'x'.repeat(1_024)}\r\n`;
    const writeMore = (): void => {
      // Bounded: 64 MiB unanswered means the server buffers the body, which this test is here to catch.
      if (answered || sent > 64 * 1024 * 1024) return;
      sent += 1_024;
      socket.write(chunk, () => setImmediate(writeMore));
    };
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      reply += data;
      answered = true;
      if (reply.includes('\r\n\r\n') && /content-length: (\d+)/i.test(reply)) {
        const length = Number(/content-length: (\d+)/i.exec(reply)?.[1]);
        if (Buffer.byteLength(reply.split('\r\n\r\n').slice(1).join('\r\n\r\n')) >= length) finish();
      }
    });
    // The server may close while a chunk is in flight: the answer already read is what counts.
    socket.on('error', () => (answered ? finish() : undefined));
    socket.on('close', () => (answered ? finish() : finish(new Error(`closed without an answer; ${sent} body bytes sent`))));
    socket.once('connect', () => {
      socket.write(head);
      if (chunked) writeMore();
    });
  });
}

describe('HTTP API security', () => {
  let beanstalkd: BeanstalkdServer;
  let api: TestApi;

  before(async () => {
    beanstalkd = await startBeanstalkd();
    api = await startApi(beanstalkd.url, { bodyLimitBytes: BODY_LIMIT, allowedHosts: ['api.example.test', 'pinned.example.test:8443'] });
  });
  after(async () => {
    await api?.close();
    await beanstalkd?.stop();
  });

  it('listens on 127.0.0.1 by default, with a generated token', TEST_TIMEOUT, async () => {
    const admin = new Admin({ urls: [beanstalkd.url] });
    const server = await createApiServer({ admin });
    try {
      const address = await server.listen();
      assert.equal(address.host, '127.0.0.1');
      assert.match(address.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(server.tokenGenerated, true);
      assert.match(server.token, /^[A-Za-z0-9_-]{43}$/);
    } finally {
      await server.close();
      await admin.close();
    }
  });

  it('refuses to listen anywhere but loopback without a configured token', TEST_TIMEOUT, async () => {
    const admin = new Admin({ urls: [beanstalkd.url] });
    try {
      const generated = await createApiServer({ admin });
      for (const host of ['0.0.0.0', '::', '192.0.2.10', 'example.com']) {
        await assert.rejects(generated.listen({ host, port: 0 }), ListenRefusedError, host);
      }
      assert.equal(generated.address, undefined, 'nothing listens');
      await generated.close();
      // With a configured token the guard lets it through: this TEST-NET address is not this machine's,
      // so the bind itself fails, and nothing ever listens beyond loopback.
      const configured = await createApiServer({ admin, token: 'a-configured-token-0123456789' });
      await assert.rejects(configured.listen({ host: '192.0.2.10', port: 0 }), (error: NodeJS.ErrnoException) => {
        assert.ok(!(error instanceof ListenRefusedError));
        assert.equal(error.code, 'EADDRNOTAVAIL');
        return true;
      });
      await configured.close();
    } finally {
      await admin.close();
    }
  });

  it('no token is a 401 with WWW-Authenticate, and a wrong one too; nothing is put', TEST_TIMEOUT, async () => {
    const tube = freshTube('auth');
    const body = { func_name: 'f' };
    const none = await api.request('POST', `/api/tubes/${tube}/jobs`, { body, token: null });
    assertError(none, 401, 'UNAUTHORIZED');
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="bsworker"');
    assertError(await api.request('POST', `/api/tubes/${tube}/jobs`, { body, token: `${api.token}x` }), 401, 'UNAUTHORIZED');
    assertError(await api.request('POST', `/api/tubes/${tube}/jobs`, { body, token: 'x'.repeat(43) }), 401, 'UNAUTHORIZED');
    assertError(
      await api.request('POST', `/api/tubes/${tube}/jobs`, { body, token: null, headers: { authorization: `Basic ${api.token}` } }),
      401,
      'UNAUTHORIZED',
    );
    // Never from a URL: a token in the query string is no token.
    assertError(await api.request('GET', `/api/tubes?token=${api.token}`, { token: null }), 401, 'UNAUTHORIZED');
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
    const ok = await api.request('POST', `/api/tubes/${tube}/jobs`, { body });
    assert.equal(ok.status, 201);
  });

  it('every read needs the token too: tubes, jobs, servers, the document and /metrics', TEST_TIMEOUT, async () => {
    for (const path of [
      '/api/servers',
      '/api/tubes',
      '/api/tubes/x',
      '/api/tubes/x/jobs',
      '/api/jobs/1',
      '/api/openapi.json',
      '/metrics',
      '/api/unknown',
    ]) {
      assertError(await api.request('GET', path, { token: null }), 401, 'UNAUTHORIZED');
    }
    assert.equal((await api.request('GET', '/healthz', { token: null })).status, 200);
  });

  it('a state-changing request from a foreign Origin or Sec-Fetch-Site is a 403 and changes nothing', TEST_TIMEOUT, async () => {
    const tube = freshTube('origin');
    const id = await rawPut(beanstalkd.url, tube, envelope('f', tube, {}));
    const own = `http://127.0.0.1:${api.port}`;
    const foreign: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `http://127.0.0.1:${api.port + 1}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: own, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of foreign) {
      assertError(await api.request('DELETE', `/api/jobs/${id}`, { headers }), 403, 'FOREIGN_ORIGIN');
      assertError(await api.request('POST', `/api/tubes/${tube}/jobs`, { headers, body: { func_name: 'f' } }), 403, 'FOREIGN_ORIGIN');
    }
    assert.equal((await rawStatsJob(beanstalkd.url, id))?.state, 'ready', 'the job is still there');
    assert.equal((await rawStatsTube(beanstalkd.url, tube))?.['total-jobs'], '1', 'nothing was put');
    // A read from another origin is not refused by Origin (the token guards it; no CORS header lets a page read it).
    const read = await api.request('GET', `/api/jobs/${id}`, { headers: { origin: 'http://evil.example' } });
    assert.equal(read.status, 200);
    assert.equal(read.headers['access-control-allow-origin'], undefined);
    // The server's own origin, as its own page would send it.
    const deleted = await api.request('DELETE', `/api/jobs/${id}`, { headers: { origin: own, 'sec-fetch-site': 'same-origin' } });
    assert.equal(deleted.status, 200);
    assert.equal(await rawStatsJob(beanstalkd.url, id), null);
  });

  it('a Host header that does not name this server is a 421, token or not (DNS rebinding)', TEST_TIMEOUT, async () => {
    const tube = freshTube('host');
    for (const host of ['evil.example', `evil.example:${api.port}`, `127.0.0.1.evil.example:${api.port}`, 'pinned.example.test:8080']) {
      assertError(await api.request('GET', '/api/tubes', { headers: { host } }), 421, 'MISDIRECTED_REQUEST');
      assertError(
        await api.request('POST', `/api/tubes/${tube}/jobs`, { headers: { host }, body: { func_name: 'f' } }),
        421,
        'MISDIRECTED_REQUEST',
      );
    }
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
    for (const host of [
      `127.0.0.1:${api.port}`,
      `localhost:${api.port}`,
      `[::1]:${api.port}`,
      'localhost:8080',
      'api.example.test',
      'pinned.example.test:8443',
    ]) {
      assert.equal((await api.request('GET', '/api/servers', { headers: { host } })).status, 200, host);
    }
    // The probes answer whatever the Host: an orchestrator calls them by pod IP.
    assert.equal((await api.request('GET', '/healthz', { headers: { host: '10.1.2.3:7420' }, token: null })).status, 200);
  });

  it('a body over the limit is a 413 from its Content-Length alone, before any of it is sent', TEST_TIMEOUT, async () => {
    const tube = freshTube('big');
    const reply = await rawRequest(
      api.port,
      `POST /api/tubes/${tube}/jobs HTTP/1.1\r\nHost: 127.0.0.1:${api.port}\r\nAuthorization: Bearer ${api.token}\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`,
      false,
    );
    assert.equal(reply.status, 413, reply.text);
    assert.equal(reply.bodyBytesSent, 0);
    assert.match(reply.text, /"code":"BODY_TOO_LARGE"/);
    assert.match(reply.text, /x-content-type-options: nosniff/i);
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
  });

  it('a chunked body is a 413 as soon as it passes the limit, while it is still being sent', TEST_TIMEOUT, async () => {
    const tube = freshTube('chunked');
    const reply = await rawRequest(
      api.port,
      `POST /api/tubes/${tube}/jobs HTTP/1.1\r\nHost: 127.0.0.1:${api.port}\r\nAuthorization: Bearer ${api.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      true,
    );
    assert.equal(reply.status, 413, reply.text);
    assert.match(reply.text, /"code":"BODY_TOO_LARGE"/);
    assert.ok(reply.bodyBytesSent > BODY_LIMIT, `the body passed the limit (${reply.bodyBytesSent} bytes sent)`);
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
    // The server goes on serving.
    assert.equal((await api.request('GET', '/api/servers')).status, 200);
  });

  it('a body under the limit is read and put', TEST_TIMEOUT, async () => {
    const tube = freshTube('small');
    const reply = await api.request('POST', `/api/tubes/${tube}/jobs`, {
      body: { func_name: 'f', kwargs: { pad: 'x'.repeat(BODY_LIMIT - 200) } },
    });
    assert.equal(reply.status, 201, reply.text);
    assertJsonHeaders(reply);
  });

  it('a request Node cannot read as HTTP still gets a JSON error with a code', TEST_TIMEOUT, async () => {
    const huge = await rawRequest(api.port, `GET /api/tubes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, false);
    assert.equal(huge.status, 431, huge.text);
    assert.match(huge.text, /content-type: application\/json; charset=utf-8/);
    assert.match(huge.text, /"code":"HEADERS_TOO_LARGE"/);
    const garbage = await rawRequest(api.port, 'NOT HTTP AT ALL\r\n\r\n', false);
    assert.equal(garbage.status, 400, garbage.text);
    assert.match(garbage.text, /"code":"BAD_REQUEST"/);
  });

  it('every reply carries nosniff, no-store and a CSP that allows nothing', TEST_TIMEOUT, async () => {
    for (const reply of [
      await api.request('GET', '/api/servers'),
      await api.request('GET', '/api/nothing'),
      await api.request('GET', '/healthz'),
    ]) {
      assertJsonHeaders(reply);
      assert.equal(reply.headers['cache-control'], 'no-store');
      assert.equal(reply.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
    }
  });
});
