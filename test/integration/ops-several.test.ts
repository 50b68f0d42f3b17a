// The operating commands over three servers, spawned for real: two beanstalkd started by the harness
// and a third that was started and stopped, so its port refuses. Every count the CLI prints is checked
// against each server's own answer to a raw command; the down server must be named, never hide the
// others, and end the command with exit 3.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BeanstalkdServer, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope, prefix, run } from '../helpers/cli.js';
import { bury } from '../helpers/raw-session.js';

const TEST_TIMEOUT = { timeout: 30_000 };

/** Puts `count` jobs into `tube` on `server` and buries them; resolves to their ids, oldest first. */
async function buried(server: BeanstalkdServer, tube: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await rawPut(server.url, tube, envelope('f', tube, { i })));
  await bury(server, ids);
  return ids;
}

/** A tube counter straight from the server, 0 when the tube does not exist. */
async function rawCount(server: BeanstalkdServer, tube: string, field: string): Promise<number> {
  return Number((await rawStatsTube(server.url, tube))?.[field] ?? 0);
}

/** A server-wide counter of `stats`, read raw. */
async function rawServerCount(server: BeanstalkdServer, field: string): Promise<number> {
  const reply = await rawCommand(server.url, 'stats\r\n');
  return Number(new RegExp(`^${field}: (\\d+)$`, 'm').exec(reply)?.[1] ?? Number.NaN);
}

describe('operating commands over several servers, one of them down', () => {
  let a: BeanstalkdServer;
  let b: BeanstalkdServer;
  let downName: string;
  let urls: string;
  const cli = (args: string[], env: Record<string, string> = {}) => run([...args, '--url', urls], env);

  before(async () => {
    [a, b] = await Promise.all([startBeanstalkd(), startBeanstalkd()]);
    const c = await startBeanstalkd();
    downName = c.url;
    await c.stop();
    urls = `${a.url},${b.url},${downName}`;
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('stats: every server up or down, totals of those that answer, each tube per server; exit 3', TEST_TIMEOUT, async () => {
    const tube = prefix('stats');
    await rawPut(a.url, tube, envelope('f', tube, {}));
    await rawPut(a.url, tube, envelope('f', tube, {}));
    await rawPut(b.url, tube, envelope('f', tube, {}), { delay: 3_600 });
    await buried(b, tube, 1);

    const json = await cli(['stats', '--tube', tube, '--json']);
    assert.equal(json.code, 3, json.stderr);
    assert.match(json.stderr, new RegExp(`1 of 3 beanstalkd servers did not answer \\(${downName}\\)`));
    const doc = JSON.parse(json.stdout) as {
      servers: { server: string; up: boolean; error: string | null; stats: { jobs: { ready: number } } | null }[];
      totals: { jobs: { ready: number; buried: number; delayed: number } };
      tubes: {
        name: string;
        ready: number;
        delayed: number;
        buried: number;
        servers: { server: string; ready: number; buried: number }[];
      }[];
      unavailable: string[];
    };
    assert.deepEqual(
      doc.servers.map((entry) => [entry.server, entry.up]),
      [
        [a.url, true],
        [b.url, true],
        [downName, false],
      ],
    );
    assert.equal(doc.servers[2]?.stats, null);
    assert.ok(doc.servers[2]?.error, 'the down server says why');
    assert.deepEqual(doc.unavailable, [downName]);
    const [one] = doc.tubes;
    assert.deepEqual([one?.name, one?.ready, one?.delayed, one?.buried], [tube, 2, 1, 1]);
    assert.deepEqual(
      one?.servers.map((entry) => [entry.server, entry.ready, entry.buried]),
      [
        [a.url, await rawCount(a, tube, 'current-jobs-ready'), 0],
        [b.url, 0, await rawCount(b, tube, 'current-jobs-buried')],
      ],
    );
    // The totals are the two servers' own counts, summed.
    assert.equal(doc.totals.jobs.ready, (await rawServerCount(a, 'current-jobs-ready')) + (await rawServerCount(b, 'current-jobs-ready')));
    assert.equal(
      doc.totals.jobs.buried,
      (await rawServerCount(a, 'current-jobs-buried')) + (await rawServerCount(b, 'current-jobs-buried')),
    );

    const text = await cli(['stats', '--tube', tube]);
    assert.equal(text.code, 3);
    assert.match(text.stdout, new RegExp(`${downName.replace('.', '\\.')}.*down: `));
    assert.match(text.stdout, /on 2 of 3 servers/);
    assert.match(text.stdout, new RegExp(`^│\\s+${a.url.replaceAll('.', '\\.')}\\s+│\\s+2\\s+│`, 'm'));
  });

  it('tubes lists the tubes of the servers that answer; --server picks one, and exit 0 then', TEST_TIMEOUT, async () => {
    const onA = prefix('ta');
    const onB = prefix('tb');
    await rawPut(a.url, onA, 'x');
    await rawPut(b.url, onB, 'x');
    const json = await cli(['tubes', '--json']);
    assert.equal(json.code, 3, json.stderr);
    const doc = JSON.parse(json.stdout) as { tubes: string[]; unavailable: string[] };
    assert.ok(doc.tubes.includes(onA) && doc.tubes.includes(onB), json.stdout);
    assert.deepEqual(doc.unavailable, [downName]);

    const only = await cli(['tubes', '--json', '--server', b.url]);
    assert.equal(only.code, 0, only.stderr);
    const picked = JSON.parse(only.stdout) as { tubes: string[]; unavailable: string[] };
    assert.ok(picked.tubes.includes(onB) && !picked.tubes.includes(onA));
    assert.deepEqual(picked.unavailable, []);

    const down = await cli(['tubes', '--server', downName]);
    assert.equal(down.code, 2, 'the one server asked for is down: an error, as with one server');
    const unknown = await cli(['tubes', '--server', '127.0.0.1:1']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no configured server is called "127\.0\.0\.1:1"/);
  });

  it('kick --bound N kicks N in all, shared by each server’s buried count', TEST_TIMEOUT, async () => {
    const tube = prefix('kick');
    await buried(a, tube, 6);
    await buried(b, tube, 3);
    const result = await cli(['kick', '--tube', tube, '--bound', '3', '--json']);
    assert.equal(result.code, 3, result.stderr);
    const doc = JSON.parse(result.stdout) as {
      kicked: number;
      tubes: { tube: string; kicked: number; stillBuried: number; servers: { server: string; kicked: number }[] }[];
      unavailable: string[];
    };
    assert.equal(doc.kicked, 3);
    assert.deepEqual(
      doc.tubes[0]?.servers.map((entry) => [entry.server, entry.kicked]),
      [
        [a.url, 2],
        [b.url, 1],
      ],
    );
    assert.deepEqual(doc.unavailable, [downName]);
    assert.deepEqual([await rawCount(a, tube, 'current-jobs-buried'), await rawCount(b, tube, 'current-jobs-buried')], [4, 2]);
    assert.deepEqual([await rawCount(a, tube, 'current-jobs-ready'), await rawCount(b, tube, 'current-jobs-ready')], [2, 1]);

    const text = await cli(['kick', '--tube', tube]);
    assert.equal(text.code, 3);
    assert.match(text.stdout, new RegExp(`kicked 6 buried jobs in tube ${tube} \\(0 still buried; ${a.url}: 4, ${b.url}: 2\\)`));
    assert.match(text.stdout, new RegExp(`server ${downName} is down: nothing kicked there`));
  });

  it('ids are qualified in and out: peek, kick-job, delete; a bare id is refused with several', TEST_TIMEOUT, async () => {
    const tube = prefix('ids');
    const [id] = await buried(b, tube, 1);
    const qualified = `${b.url}/${id}`;
    const peek = await cli(['peek', qualified, '--json']);
    assert.equal(peek.code, 0, peek.stderr);
    const job = JSON.parse(peek.stdout) as { id: string; server: string; state: string; tube: string };
    assert.deepEqual([job.id, job.server, job.state, job.tube], [qualified, b.url, 'buried', tube]);

    const next = await cli(['peek', '--tube', tube, '--buried', '--json']);
    assert.equal((JSON.parse(next.stdout) as { id: string }).id, qualified, 'the down server does not stop a peek');

    const bare = await cli(['peek', String(id)]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, new RegExp(`write it as host:port/${id}`));
    const withServer = await cli(['peek', String(id), '--server', b.url, '--json']);
    assert.equal((JSON.parse(withServer.stdout) as { id: string }).id, qualified, '--server makes a bare id unambiguous');

    const kicked = await cli(['kick-job', qualified, '--json']);
    assert.equal(kicked.code, 0, kicked.stderr);
    assert.deepEqual(JSON.parse(kicked.stdout), { id: qualified, kicked: true, from: 'buried', tube });
    assert.equal((await rawStatsJob(b.url, String(id)))?.state, 'ready');

    const deleted = await cli(['delete', qualified, '--json']);
    assert.deepEqual(JSON.parse(deleted.stdout), { deleted: 1, ids: [qualified] });
    assert.equal(await rawStatsJob(b.url, String(id)), null);

    const onDown = await cli(['peek', `${downName}/1`]);
    assert.equal(onDown.code, 2, 'a job on the down server cannot be read: an error naming it');
    assert.match(onDown.stderr, new RegExp(downName.replaceAll('.', '\\.')));
  });

  it('delete --buried --limit N deletes N in all, shared like a kick, each id qualified', TEST_TIMEOUT, async () => {
    const tube = prefix('del');
    const onA = await buried(a, tube, 2);
    const onB = await buried(b, tube, 2);
    const result = await cli(['delete', '--tube', tube, '--buried', '--limit', '2', '--yes', '--json']);
    assert.equal(result.code, 3, result.stderr);
    const doc = JSON.parse(result.stdout) as {
      deleted: number;
      ids: string[];
      servers: { server: string; deleted: number }[];
      unavailable: string[];
    };
    assert.deepEqual(doc.ids, [`${a.url}/${onA[0]}`, `${b.url}/${onB[0]}`]);
    assert.deepEqual(doc.servers, [
      { server: a.url, deleted: 1 },
      { server: b.url, deleted: 1 },
    ]);
    assert.deepEqual(doc.unavailable, [downName]);
    assert.deepEqual([await rawCount(a, tube, 'current-jobs-buried'), await rawCount(b, tube, 'current-jobs-buried')], [1, 1]);
  });

  it('pause and resume every server that has the tube, and name the one that is down', TEST_TIMEOUT, async () => {
    const tube = prefix('pause');
    await rawPut(a.url, tube, 'x');
    await rawPut(b.url, tube, 'x');
    const paused = await cli(['pause', '--tube', tube, '--seconds', '600', '--json']);
    assert.equal(paused.code, 3, paused.stderr);
    const doc = JSON.parse(paused.stdout) as { pauseSeconds: number; servers: { server: string }[]; unavailable: string[] };
    assert.deepEqual(
      doc.servers.map((entry) => entry.server),
      [a.url, b.url],
    );
    assert.deepEqual(doc.unavailable, [downName]);
    assert.deepEqual([await rawCount(a, tube, 'pause'), await rawCount(b, tube, 'pause')], [600, 600]);

    const resumed = await cli(['resume', '--tube', tube]);
    assert.equal(resumed.code, 3);
    assert.match(resumed.stdout, new RegExp(`server ${downName} is down: its tube ${tube} was not changed`));
    assert.deepEqual([await rawCount(a, tube, 'pause'), await rawCount(b, tube, 'pause')], [0, 0]);
  });

  it('put spreads like a producer, past the down server, and prints the qualified id', TEST_TIMEOUT, async () => {
    const tube = prefix('put');
    const servers = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const result = await cli(['put', tube, 'send', '--kwargs', `{"i": ${i}}`, '--json']);
      assert.equal(result.code, 0, result.stderr);
      const doc = JSON.parse(result.stdout) as { id: string; server: string; tube: string };
      assert.ok(doc.id.startsWith(`${doc.server}/`), doc.id);
      const server = doc.server === a.url ? a : b;
      assert.equal((await rawStatsJob(server.url, doc.id.slice(doc.server.length + 1)))?.tube, tube);
      servers.add(doc.server);
    }
    // Each put is its own process, so each starts the rotation anew; only the down server is never chosen.
    assert.ok(!servers.has(downName));
    assert.equal((await rawCount(a, tube, 'total-jobs')) + (await rawCount(b, tube, 'total-jobs')), 4);
  });

  it('buried lists each server’s page under qualified ids; BEANSTALKD_URL may hold the list', TEST_TIMEOUT, async () => {
    const tube = prefix('bur');
    const onA = await buried(a, tube, 1);
    const onB = await buried(b, tube, 2);
    const result = await run(['buried', '--tube', tube, '--json'], { BEANSTALKD_URL: urls });
    assert.equal(result.code, 3, result.stderr);
    const doc = JSON.parse(result.stdout) as {
      buried: number;
      jobs: { id: string }[];
      servers: { server: string; buried: number; exhausted: boolean }[];
      unavailable: string[];
    };
    assert.equal(doc.buried, 3);
    assert.deepEqual(
      doc.jobs.map((job) => job.id),
      [`${a.url}/${onA[0]}`, `${b.url}/${onB[1]}`, `${b.url}/${onB[0]}`],
    );
    assert.deepEqual(
      doc.servers.map((entry) => [entry.server, entry.buried, entry.exhausted]),
      [
        [a.url, 1, true],
        [b.url, 2, true],
      ],
    );
    assert.deepEqual(doc.unavailable, [downName]);
    const cursor = await run(['buried', '--tube', tube, '--cursor', '5'], { BEANSTALKD_URL: urls });
    assert.equal(cursor.code, 2);
    assert.match(cursor.stderr, /give --server too/);
  });

  it('top shows the down server in every refresh, and its JSON lists each server', TEST_TIMEOUT, async () => {
    const tube = prefix('top');
    await rawPut(a.url, tube, 'x');
    const plain = await cli(['top', '--iterations', '1']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`down server=${downName.replaceAll('.', '\\.')} error="`));
    assert.match(plain.stdout, new RegExp(`tube=${tube} ready=1 `));
    const json = await cli(['top', '--iterations', '1', '--json']);
    const frame = JSON.parse(json.stdout.trim()) as { servers: { server: string; up: boolean }[]; unavailable: string[]; totals: object };
    assert.deepEqual(
      frame.servers.map((entry) => entry.up),
      [true, true, false],
    );
    assert.deepEqual(frame.unavailable, [downName]);
  });
});
