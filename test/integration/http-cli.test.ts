// `bsworker serve` as a user runs it: the real binary as a child process, against a real beanstalkd,
// with the fixture jobs directory loaded. The token it generates (or is given), the refusals at start,
// and a stop on SIGTERM.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BeanstalkdServer, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, prefix, run, waitForText, writeFixtureJobs } from '../helpers/cli.js';
import { assertError, send } from '../helpers/http.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const TOKEN = 'cli-test-token-0123456789abcdef';

describe('bsworker serve', () => {
  let beanstalkd: BeanstalkdServer;
  let jobs: string;

  before(async () => {
    beanstalkd = await startBeanstalkd();
    jobs = await mkdtemp(join(tmpdir(), 'bsworker-serve-'));
    await writeFixtureJobs(jobs);
  });
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await rm(jobs, { recursive: true, force: true });
    await beanstalkd?.stop();
  });

  /** Starts `bsworker serve` on a free port; resolves with the child and its port once it listens. */
  async function serve(args: string[], env: Record<string, string> = {}): Promise<{ cli: Cli; port: number }> {
    const cli = new Cli(['serve', '--port', '0', '--url', beanstalkd.url, ...args], env);
    const line = await cli.waitForLine((entry) => entry.msg === 'http: listening', 'http: listening');
    const port = Number(/:(\d+)$/.exec(String(line.url))?.[1]);
    assert.ok(port > 0, `a port in ${String(line.url)}`);
    assert.match(String(line.url), /^http:\/\/127\.0\.0\.1:\d+$/);
    return { cli, port };
  }

  it('generates a token, prints it on stderr only, checks puts against --jobs, and stops on SIGTERM', TEST_TIMEOUT, async () => {
    const p = prefix('serve');
    const { cli, port } = await serve(['--jobs', jobs], { FIXTURE_PREFIX: p });
    await waitForText(
      cli.child.stderr,
      () => cli.stderr,
      (text) => /Bearer <token>/.test(text),
      'the generated token',
    );
    const token = /generated one for this run:\n {2}(\S+)\n/.exec(cli.stderr)?.[1];
    assert.ok(token && token.length >= 43, cli.stderr);
    assert.ok(!cli.stdout.includes(token), 'the token is not in the log');

    assert.equal((await send(port, 'GET', '/readyz', null)).status, 200);
    assertError(await send(port, 'GET', '/api/tubes', null), 401, 'UNAUTHORIZED');
    assert.equal((await send(port, 'GET', '/api/tubes', token)).status, 200);
    const put = await send(port, 'POST', `/api/tubes/${p}-fast/jobs`, token, { body: { func_name: 'fast', kwargs: { n: 1 } } });
    assert.equal(put.status, 201, put.text);
    assert.equal((await rawStatsTube(beanstalkd.url, `${p}-fast`))?.['current-jobs-ready'], '1');
    const unknown = await send(port, 'POST', `/api/tubes/${p}-fast/jobs`, token, { body: { func_name: 'slow' } });
    assert.match(assertError(unknown, 400, 'UNKNOWN_TASK').message, /"fast"/);

    cli.signal('SIGTERM');
    const exit = await cli.waitForExit();
    assert.equal(exit.code, 0, cli.stderr);
    assert.ok(cli.lines.some((line) => line.msg === 'http: stopped'));
  });

  it(
    'validates a put with the task schema of --jobs: invalid kwargs get 400 with the issues, valid ones are put',
    TEST_TIMEOUT,
    async () => {
      const tube = prefix('serve-schema');
      const schemaJobs = fileURLToPath(new URL('../fixtures/schema-jobs', import.meta.url));
      const { cli, port } = await serve(['--jobs', schemaJobs], { BSWORKER_TOKEN: TOKEN, BSW_SCHEMA_TUBE: tube });
      const bad = await send(port, 'POST', `/api/tubes/${tube}/jobs`, TOKEN, {
        body: { func_name: 'send', kwargs: { to: 'nope', count: 3 } },
      });
      const error = assertError(bad, 400, 'INVALID_KWARGS');
      assert.match(bad.text, /email/i, 'the issues name what is wrong');
      assert.ok(error, bad.text);
      assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
      const good = await send(port, 'POST', `/api/tubes/${tube}/jobs`, TOKEN, {
        body: { func_name: 'send', kwargs: { to: 'ann@example.com' } },
      });
      assert.equal(good.status, 201, good.text);
      assert.equal((await rawStatsTube(beanstalkd.url, tube))?.['current-jobs-ready'], '1');
      // /metrics has the backlog of every tube on the server, read at the scrape.
      const metrics = await send(port, 'GET', '/metrics', TOKEN);
      assert.equal(metrics.status, 200);
      assert.ok(metrics.text.includes(`bsworker_tube_jobs{server="${beanstalkd.url}",tube="${tube}",state="ready"} 1\n`), metrics.text);
      assert.match(metrics.text, /^bsworker_server_up\{server="[^"]+"\} 1$/m);
      assert.match(metrics.text, /^beanstalkd_cmd_put_total\{server="[^"]+"\} \d+$/m);
      // The registry, as `bsworker check` shows it.
      const tasks = await send(port, 'GET', '/api/tasks', TOKEN);
      const registry = tasks.json as {
        loaded: boolean;
        tubes: { tube: string; tasks: { name: string; retries: number; schema: unknown }[] }[];
      };
      assert.equal(registry.loaded, true);
      const mine = registry.tubes.find((entry) => entry.tube === tube);
      assert.deepEqual(
        mine?.tasks.map((task) => [task.name, task.retries, (task.schema as { vendor?: string } | null)?.vendor ?? null]),
        [
          ['plain', 0, null],
          ['send', 2, 'zod'],
        ],
      );
      // The JSON Schema of what `send` accepts, from zod's Standard JSON Schema.
      const sendSchema = mine?.tasks.find((task) => task.name === 'send')?.schema as { jsonSchema?: { required?: string[] } } | undefined;
      assert.deepEqual(sendSchema?.jsonSchema?.required, ['to']);
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0);
    },
  );

  it('takes the token from BSWORKER_TOKEN and from --token-file, and prints none', TEST_TIMEOUT, async () => {
    const fromEnv = await serve([], { BSWORKER_TOKEN: TOKEN });
    assert.equal((await send(fromEnv.port, 'GET', '/api/servers', TOKEN)).status, 200);
    assertError(await send(fromEnv.port, 'GET', '/api/servers', `${TOKEN}-not`), 401, 'UNAUTHORIZED');
    fromEnv.cli.signal('SIGTERM');
    assert.equal((await fromEnv.cli.waitForExit()).code, 0);
    assert.ok(!fromEnv.cli.stderr.includes('generated'), fromEnv.cli.stderr);

    const file = join(jobs, '.token');
    await writeFile(file, `${TOKEN}-file\n`);
    await chmod(file, 0o600);
    const fromFile = await serve(['--token-file', file], { BSWORKER_TOKEN: TOKEN });
    assert.equal((await send(fromFile.port, 'GET', '/api/servers', `${TOKEN}-file`)).status, 200, 'the file wins over the environment');
    assertError(await send(fromFile.port, 'GET', '/api/servers', TOKEN), 401, 'UNAUTHORIZED');
    fromFile.cli.signal('SIGTERM');
    assert.equal((await fromFile.cli.waitForExit()).code, 0);
    assert.equal(fromFile.cli.stderr, '', 'no warning for a 600 file, no token printed');
  });

  it('--no-metrics-auth opens /metrics alone', TEST_TIMEOUT, async () => {
    const { cli, port } = await serve(['--no-metrics-auth'], { BSWORKER_TOKEN: TOKEN });
    assert.equal((await send(port, 'GET', '/metrics', null)).status, 200);
    assertError(await send(port, 'GET', '/api/tubes', null), 401, 'UNAUTHORIZED');
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it(
    'refuses, with exit 2, a non-loopback --host without a configured token, a short token and an unreadable file',
    TEST_TIMEOUT,
    async () => {
      const open = await run(['serve', '--host', '0.0.0.0', '--port', '0', '--url', beanstalkd.url]);
      assert.equal(open.code, 2);
      assert.match(open.stderr, /refusing to listen on 0\.0\.0\.0.*without a configured token/);
      const short = await run(['serve', '--port', '0', '--url', beanstalkd.url], { BSWORKER_TOKEN: 'short' });
      assert.equal(short.code, 2);
      assert.match(short.stderr, /BSWORKER_TOKEN is 5 characters long; use at least 16/);
      const missing = await run(['serve', '--port', '0', '--token-file', join(jobs, 'no-such-file')]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read --token-file .*ENOENT/);
      const badHost = await run(['serve', '--port', '0', '--allowed-host', 'a b']);
      assert.equal(badHost.code, 2);
      assert.match(badHost.stderr, /expected NAME or NAME:PORT/);
      for (const proxy of ['proxy.internal', '10.0.0.0/33', '127.0.0.1/8/1']) {
        const badProxy = await run(['serve', '--port', '0', '--trust-proxy', proxy]);
        assert.equal(badProxy.code, 2, proxy);
        assert.match(badProxy.stderr, /--trust-proxy.*expected an IP address or a CIDR range/, proxy);
      }
    },
  );
});
