// The HTTP API with its injected parts (a task registry, a kwargs validator, a metrics source), the
// OpenAPI document as a whole, a 500 that keeps its secrets, and a beanstalkd that is down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Admin } from '../../src/admin/admin.js';
import type { KwargsValidator, TaskRegistry } from '../../src/http/types.js';
import type { RegisteredTask } from '../../src/tasks/registry.js';
import { type BeanstalkdServer, rawCommand, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope } from '../helpers/cli.js';
import { assertError, captureLogger, type OpenApiDocument, startApi, type TestApi } from '../helpers/http.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 20_000 };

/** A registered task as the server sees one; it is never run here. */
function fakeTask(tube: string, name: string): RegisteredTask {
  return { tube, name, fn: () => undefined, options: {}, run: () => undefined };
}

/** A registry of the given tasks, as `findTask`/`listTasks` of src/tasks/registry.ts answer. */
function fakeRegistry(tasks: readonly RegisteredTask[]): TaskRegistry {
  return {
    findTask: (tube, name) => tasks.find((task) => task.tube === tube && task.name === name),
    listTasks: () => tasks,
  };
}

/**
 * Stands in for `validateKwargs` of src/tasks/schema.ts (on another branch): `to` must be a string with
 * an `@`, answered asynchronously as an async schema would.
 */
const fakeValidate: KwargsValidator = async (_task, kwargs) => {
  const to = (kwargs as { to?: unknown }).to;
  if (typeof to === 'string' && to.includes('@')) return { ok: true, value: kwargs };
  return { ok: false, issues: [{ message: 'Invalid email address', path: ['to'] }] };
};

describe('HTTP API with a loaded registry and a schema validator', () => {
  let beanstalkd: BeanstalkdServer;
  let api: TestApi;
  const tube = freshTube('reg');

  before(async () => {
    beanstalkd = await startBeanstalkd();
    api = await startApi(beanstalkd.url, {
      registry: fakeRegistry([fakeTask(tube, 'send_email'), fakeTask(tube, 'send_sms'), fakeTask(`${tube}-other`, 'resize')]),
      validate: fakeValidate,
    });
  });
  after(async () => {
    await api?.close();
    await beanstalkd?.stop();
  });

  it('a task the registry does not have in the tube is a 400 UNKNOWN_TASK naming those it has; nothing is put', TEST_TIMEOUT, async () => {
    for (const [into, name] of [
      [tube, 'send_fax'],
      [tube, 'resize'],
      [freshTube('empty'), 'send_email'],
    ] as const) {
      const error = assertError(await api.request('POST', `/api/tubes/${into}/jobs`, { body: { func_name: name } }), 400, 'UNKNOWN_TASK');
      assert.deepEqual((error.issues?.[0] as { path: unknown[] } | undefined)?.path, ['body', 'func_name']);
      if (into === tube) assert.match(error.message, /"send_email", "send_sms"/);
      else assert.match(error.message, /registers no task in that tube/);
    }
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
  });

  it('kwargs the schema refuses are a 400 INVALID_KWARGS with the issues under body.kwargs; nothing is put', TEST_TIMEOUT, async () => {
    const reply = await api.request('POST', `/api/tubes/${tube}/jobs`, {
      body: { func_name: 'send_email', kwargs: { to: 'not-an-address' } },
    });
    const error = assertError(reply, 400, 'INVALID_KWARGS');
    assert.deepEqual(error.issues, [{ message: 'Invalid email address', path: ['body', 'kwargs', 'to'] }]);
    assert.match(error.message, /kwargs\.to Invalid email address/);
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
  });

  it('a registered task with valid kwargs is put as given', TEST_TIMEOUT, async () => {
    const reply = await api.request('POST', `/api/tubes/${tube}/jobs`, {
      body: { func_name: 'send_email', kwargs: { to: 'ann@example.com' } },
    });
    assert.equal(reply.status, 201, reply.text);
    const { id } = reply.json as { id: string };
    const peeked = await rawCommand(beanstalkd.url, `peek ${id}\r\n`);
    assert.ok(peeked.includes(envelope('send_email', tube, { to: 'ann@example.com' })), peeked);
  });

  it('the checks that need no task come first: a bad TTR is reported as it is without a registry', TEST_TIMEOUT, async () => {
    const reply = await api.request('POST', `/api/tubes/${tube}/jobs`, {
      body: { func_name: 'send_fax', kwargs: {}, options: { ttr: 1 } },
    });
    assertError(reply, 400, 'INVALID_REQUEST');
  });
});

describe('HTTP API: metrics, the OpenAPI document, an unexpected error', () => {
  let beanstalkd: BeanstalkdServer;

  before(async () => {
    beanstalkd = await startBeanstalkd();
  });
  after(async () => {
    await beanstalkd?.stop();
  });

  it('/metrics serves an empty exposition when nothing is injected', TEST_TIMEOUT, async () => {
    const api = await startApi(beanstalkd.url);
    try {
      const reply = await api.request('GET', '/metrics');
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
      assert.equal(reply.text, '');
    } finally {
      await api.close();
    }
  });

  it('/metrics serves an injected registry or render function; --no-metrics-auth opens it alone', TEST_TIMEOUT, async () => {
    const exposition =
      '# HELP bsworker_server_up Whether the server answered.\n# TYPE bsworker_server_up gauge\nbsworker_server_up{server="x"} 1\n';
    const registry = await startApi(beanstalkd.url, {
      metricsRegistry: { contentType: 'text/plain; version=0.0.4; charset=utf-8', metrics: async () => exposition },
    });
    try {
      const reply = await registry.request('GET', '/metrics');
      assert.equal(reply.status, 200);
      assert.equal(reply.text, exposition);
      assertError(await registry.request('GET', '/metrics', { token: null }), 401, 'UNAUTHORIZED');
    } finally {
      await registry.close();
    }
    const open = await startApi(beanstalkd.url, {
      metricsRegistry: async () => ({ contentType: 'application/openmetrics-text; version=1.0.0; charset=utf-8', body: '# EOF\n' }),
      metricsAuth: false,
    });
    try {
      const reply = await open.request('GET', '/metrics', { token: null });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
      assert.equal(reply.text, '# EOF\n');
      assertError(await open.request('GET', '/api/tubes', { token: null }), 401, 'UNAUTHORIZED');
    } finally {
      await open.close();
    }
  });

  it('the OpenAPI document is OpenAPI 3.1 JSON with every route, each $ref resolved', TEST_TIMEOUT, async () => {
    const api = await startApi(beanstalkd.url);
    try {
      const reply = await api.request('GET', '/api/openapi.json');
      assert.equal(reply.status, 200);
      const document = JSON.parse(reply.text) as OpenApiDocument & Record<string, unknown>;
      assert.equal(document.openapi, '3.1.0');
      const operations = Object.entries(document.paths)
        .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
        .sort();
      assert.deepEqual(
        operations,
        [
          'DELETE /api/jobs/{id}',
          'GET /api/jobs/{id}',
          'GET /api/openapi.json',
          'GET /api/progress',
          'GET /api/schedules',
          'GET /api/servers',
          'GET /api/tasks',
          'GET /api/tubes',
          'GET /api/tubes/{tube}',
          'GET /api/tubes/{tube}/jobs',
          'GET /api/workers',
          'GET /healthz',
          'GET /metrics',
          'GET /readyz',
          'POST /api/jobs/{id}/kick',
          'POST /api/jobs/{id}/requeue',
          'POST /api/tubes/{tube}/jobs',
          'POST /api/tubes/{tube}/kick',
          'POST /api/tubes/{tube}/pause',
          'POST /api/tubes/{tube}/requeue',
          'POST /api/tubes/{tube}/resume',
        ].sort(),
      );
      const refs: string[] = [];
      const walk = (value: unknown): void => {
        if (Array.isArray(value)) value.forEach(walk);
        else if (typeof value === 'object' && value !== null) {
          for (const [key, child] of Object.entries(value)) {
            if (key === '$ref' && typeof child === 'string') refs.push(child);
            else walk(child);
          }
        }
      };
      walk(document);
      assert.ok(refs.length > 20, `the document uses shared schemas (${refs.length} refs)`);
      for (const ref of refs) {
        assert.match(ref, /^#\/components\/schemas\//);
        assert.ok(document.components.schemas[ref.replace('#/components/schemas/', '')], `${ref} resolves`);
      }
      assert.deepEqual((document as { security?: unknown }).security, [{ bearerAuth: [] }]);
      const health = document.paths['/healthz']?.get as unknown as { security?: unknown };
      assert.deepEqual(health.security, [], '/healthz needs no token');
    } finally {
      await api.close();
    }
  });

  it('an unexpected error is a 500 JSON that leaks nothing; the log has the error', TEST_TIMEOUT, async () => {
    const { logger, lines } = captureLogger();
    const api = await startApi(beanstalkd.url, {
      logger,
      registry: {
        findTask: () => {
          throw new Error('EACCES /srv/secret/credentials.json');
        },
        listTasks: () => [],
      },
    });
    try {
      const reply = await api.request('POST', `/api/tubes/${freshTube('boom')}/jobs`, { body: { func_name: 'f' } });
      assertError(reply, 500, 'INTERNAL_ERROR');
      assert.ok(!reply.text.includes('secret') && !reply.text.includes('EACCES') && !reply.text.includes(' at '), reply.text);
      const logged = lines.find((line) => line.msg === 'http: request failed');
      assert.ok(logged, 'the failure is logged');
      assert.match(JSON.stringify(logged.err), /credentials\.json/);
    } finally {
      await api.close();
    }
  });
});

describe('HTTP API with beanstalkd down', () => {
  let api: TestApi;
  let url: string;

  before(async () => {
    const beanstalkd = await startBeanstalkd();
    url = beanstalkd.url;
    await beanstalkd.stop();
    api = await startApi(url, { admin: new Admin({ urls: [url], connectTimeoutMs: 2_000 }) });
  });
  after(async () => {
    await api?.close();
  });

  it('/readyz is a 503 naming the server that is down; /healthz is still 200', TEST_TIMEOUT, async () => {
    const ready = await api.request('GET', '/readyz', { token: null });
    assert.equal(ready.status, 503);
    const body = ready.json as {
      ready: boolean;
      servers: { server: string; up: boolean; error: string }[];
      error: { code: string; message: string };
    };
    assert.equal(body.ready, false);
    assert.equal(body.error.code, 'NOT_READY');
    assert.match(body.error.message, new RegExp(url.replaceAll('.', '\\.')));
    assert.equal(body.servers[0]?.server, url);
    assert.equal(body.servers[0]?.up, false);
    assert.match(body.servers[0]?.error ?? '', /connection refused/);
    assert.equal((await api.request('GET', '/healthz', { token: null })).status, 200);
  });

  it('the API answers 503 SERVER_UNAVAILABLE JSON with the server and a Retry-After', TEST_TIMEOUT, async () => {
    for (const [method, path, body] of [
      ['GET', '/api/tubes', undefined],
      ['GET', '/api/tubes/emails', undefined],
      ['GET', '/api/tubes/emails/jobs?state=buried', undefined],
      ['GET', '/api/jobs/1', undefined],
      ['POST', '/api/tubes/emails/jobs', { func_name: 'f' }],
      ['POST', '/api/tubes/emails/kick', {}],
      ['DELETE', '/api/jobs/1', undefined],
    ] as const) {
      const reply = await api.request(method, path, body === undefined ? {} : { body });
      const error = assertError(reply, 503, 'SERVER_UNAVAILABLE');
      assert.equal(error.server, url, `${method} ${path}`);
      assert.equal(reply.headers['retry-after'], '5');
    }
    const servers = await api.request('GET', '/api/servers');
    assert.equal(servers.status, 200, 'the servers list reports it down instead');
    assert.equal((servers.json as { servers: { up: boolean }[] }).servers[0]?.up, false);
  });
});
