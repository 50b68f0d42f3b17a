// `bsworker stats`, `tubes`, `pause` and `resume`, spawned for real against a real beanstalkd. Every
// number the CLI prints is checked against the server's own answer to a raw command, so the test does
// not trust the adapter it is testing.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BeanstalkdServer, freePort, rawCommand, rawPut, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope, eventually, prefix, run } from '../helpers/cli.js';
import { bury } from '../helpers/raw-session.js';

const TEST_TIMEOUT = { timeout: 20_000 };
const UINT32_MAX = 4_294_967_295;

interface TubeJson {
  name: string;
  ready: number;
  urgent: number;
  reserved: number;
  delayed: number;
  buried: number;
  total: number;
  watching: number;
  waiting: number;
  pausedSecondsLeft: number;
}
interface StatsJson {
  server: {
    version: string;
    uptimeSeconds: number;
    connections: number;
    jobs: Record<'ready' | 'urgent' | 'reserved' | 'delayed' | 'buried' | 'total', number>;
    maxJobSize: number;
    binlog: { enabled: boolean; currentIndex: number };
    draining: boolean;
  };
  tubes: TubeJson[];
}

/** The server-wide `stats` reply as strings, parsed here rather than by the code under test. */
async function rawStats(url: string): Promise<Record<string, string>> {
  const reply = await rawCommand(url, 'stats\r\n');
  const entries = reply
    .split('\r\n')[1]
    ?.split('\n')
    .map((line) => /^([a-z-]+): "?(.*?)"?$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => [match[1], match[2]]);
  return Object.fromEntries(entries ?? []);
}

/** `list-tubes` straight from the server, sorted. */
async function rawTubes(url: string): Promise<string[]> {
  const reply = await rawCommand(url, 'list-tubes\r\n');
  return [...reply.matchAll(/^- (.+)$/gm)].map((match) => match[1] ?? '').sort();
}

/** Reserves and buries a ready job on one socket: `bury` works only on the connection that reserved it. */
function buryOne(server: BeanstalkdServer, id: string): Promise<void> {
  return bury(server, [id]);
}

/** The cells of the table row whose first cell is `name` (cli-table3 draws `│` between cells). */
function row(stdout: string, name: string): string[] | undefined {
  return stdout
    .split('\n')
    .map((line) =>
      line
        .split('│')
        .map((cell) => cell.trim())
        .slice(1, -1),
    )
    .find((cells) => cells[0] === name);
}

/** `error: ...` from commander, then its help hint: one line that says what is wrong. */
function assertUsage(result: { code: number | null; stdout: string; stderr: string }, reason: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, '');
  const [first, ...rest] = result.stderr.trimEnd().split('\n');
  assert.match(first ?? '', reason);
  assert.ok(
    rest.every((line) => !/error/i.test(line)),
    result.stderr,
  );
}

/** A `bsworker: error: ...` line from the command itself: exactly one line. */
function assertOneLine(result: { code: number | null; stdout: string; stderr: string }, text: string): void {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^bsworker: error: [^\n]+\n$/);
  assert.ok(result.stderr.includes(text), result.stderr);
}

describe('bsworker stats, tubes, pause, resume', () => {
  let server: BeanstalkdServer;
  const cli = (...args: string[]) => run([...args, '--url', server.url]);

  before(async () => {
    server = await startBeanstalkd();
  });

  after(async () => {
    await server?.stop();
  });

  it('stats: the summary, the table and --json agree with the server', TEST_TIMEOUT, async () => {
    const t = prefix('stats');
    // 3 ready (1 urgent), 1 delayed, 1 buried: every column gets a different number.
    await rawPut(server.url, t, envelope('f', t, { n: 1 }), { priority: 10 });
    await rawPut(server.url, t, envelope('f', t, { n: 2 }));
    await rawPut(server.url, t, envelope('f', t, { n: 3 }));
    await rawPut(server.url, t, envelope('f', t, { n: 4 }), { delay: 3_600 });
    await buryOne(server, await rawPut(server.url, t, envelope('f', t, { n: 5 })));

    const [json, text, all] = await Promise.all([cli('stats', '--tube', t, '--json'), cli('stats', '--tube', t), cli('stats', '--json')]);
    const [tube, serverStats, tubes] = await Promise.all([rawStatsTube(server.url, t), rawStats(server.url), rawTubes(server.url)]);
    assert.ok(tube);
    for (const result of [json, text, all]) assert.equal(result.code, 0, result.stderr);

    const report = JSON.parse(json.stdout) as StatsJson;
    const expected: TubeJson = {
      name: t,
      ready: Number(tube['current-jobs-ready']),
      urgent: Number(tube['current-jobs-urgent']),
      reserved: Number(tube['current-jobs-reserved']),
      delayed: Number(tube['current-jobs-delayed']),
      buried: Number(tube['current-jobs-buried']),
      total: Number(tube['total-jobs']),
      watching: Number(tube['current-watching']),
      waiting: Number(tube['current-waiting']),
      pausedSecondsLeft: 0,
    };
    assert.deepEqual(report.tubes, [expected]);
    // And the server saw what this test meant to set up.
    assert.deepEqual([expected.ready, expected.urgent, expected.delayed, expected.buried, expected.total], [3, 1, 1, 1, 5]);

    // Nothing else uses this server while a test runs, so the job counts stand still.
    assert.deepEqual(report.server.jobs, {
      ready: Number(serverStats['current-jobs-ready']),
      urgent: Number(serverStats['current-jobs-urgent']),
      reserved: Number(serverStats['current-jobs-reserved']),
      delayed: Number(serverStats['current-jobs-delayed']),
      buried: Number(serverStats['current-jobs-buried']),
      total: Number(serverStats['total-jobs']),
    });
    assert.equal(report.server.version, serverStats.version);
    assert.equal(report.server.maxJobSize, Number(serverStats['max-job-size']));
    assert.ok(Math.abs(report.server.uptimeSeconds - Number(serverStats.uptime)) <= 1);
    assert.ok(report.server.connections >= 1, 'the command counts its own connection');
    assert.equal(report.server.binlog.enabled, false);
    assert.equal(report.server.draining, false);

    // Without --tube: every tube the server lists, sorted by name.
    const everything = JSON.parse(all.stdout) as StatsJson;
    assert.deepEqual(
      everything.tubes.map((entry) => entry.name),
      tubes,
    );
    assert.deepEqual(
      everything.tubes.find((entry) => entry.name === t),
      expected,
    );

    assert.deepEqual(row(text.stdout, 'tube'), [
      'tube',
      'ready',
      'urgent',
      'reserved',
      'delayed',
      'buried',
      // Jobs ever put: labelled so that nobody reads it as a sum of the other columns.
      'put (all time)',
      'watching',
      'waiting',
      'paused',
    ]);
    assert.deepEqual(row(text.stdout, t), [t, '3', '1', '0', '1', '1', '5', String(expected.watching), String(expected.waiting), '-']);
    assert.match(text.stdout, new RegExp(`^server\\s+beanstalkd ${serverStats.version} at ${server.url}$`, 'm'));
    assert.match(text.stdout, /^jobs\s+\d+ ready \(\d+ urgent\), \d+ reserved, \d+ delayed, \d+ buried; \d+ put since start$/m);
    assert.match(text.stdout, new RegExp(`^max job size\\s+${serverStats['max-job-size']} bytes$`, 'm'));
    assert.match(text.stdout, /^binlog\s+off /m);
    assert.doesNotMatch(text.stdout, /draining/);
    assert.ok(!text.stdout.includes('\u001b['), 'no colours when stdout is not a terminal');
  });

  it('tubes: every tube the server knows, as lines and as JSON', TEST_TIMEOUT, async () => {
    const [a, b] = [prefix('tubes'), prefix('tubes')];
    await rawPut(server.url, a, envelope('f', a, {}));
    await rawPut(server.url, b, envelope('f', b, {}));
    const [text, json] = await Promise.all([cli('tubes'), cli('tubes', '--json')]);
    const tubes = await rawTubes(server.url);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(json.code, 0, json.stderr);
    assert.ok(tubes.includes(a) && tubes.includes(b) && tubes.includes('default'), String(tubes));
    assert.equal(text.stdout, `${tubes.join('\n')}\n`);
    assert.deepEqual(JSON.parse(json.stdout), { tubes });
  });

  it('pause shows in stats until resume clears it', TEST_TIMEOUT, async () => {
    const t = prefix('pause');
    // A job keeps the tube alive: beanstalkd drops an empty tube nobody uses or watches.
    await rawPut(server.url, t, envelope('f', t, {}));

    const paused = await cli('pause', '--tube', t, '--seconds', '600');
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, new RegExp(`^paused tube ${t} for 10m \\(until \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\)`));
    assert.ok(paused.stdout.includes(`bsworker resume --tube ${t}`), paused.stdout);
    const raw = await rawStatsTube(server.url, t);
    assert.equal(raw?.pause, '600');
    assert.ok(Number(raw?.['pause-time-left']) > 0);

    const [json, text] = await Promise.all([cli('stats', '--tube', t, '--json'), cli('stats', '--tube', t)]);
    const left = (JSON.parse(json.stdout) as StatsJson).tubes[0]?.pausedSecondsLeft ?? 0;
    assert.ok(left > 0 && left <= 600, `pausedSecondsLeft ${left}`);
    assert.match(row(text.stdout, t)?.[9] ?? '', /^\d+m( \d+s)? left$/);

    // A new pause replaces the old one and says so; --json reports what the server now holds.
    const again = await cli('pause', '--tube', t, '--seconds', '60', '--json');
    assert.equal(again.code, 0, again.stderr);
    const result = JSON.parse(again.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(result), ['tube', 'pauseSeconds', 'pausedSecondsLeft', 'previousSecondsLeft']);
    assert.equal(result.tube, t);
    assert.equal(result.pauseSeconds, 60);
    assert.ok(Number(result.pausedSecondsLeft) > 0 && Number(result.pausedSecondsLeft) <= 60);
    assert.ok(Number(result.previousSecondsLeft) > 60);
    assert.equal((await rawStatsTube(server.url, t))?.pause, '60');

    const resumed = await cli('resume', '--tube', t);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`^resumed tube ${t} \\(its pause had \\d+s left\\)`));
    assert.deepEqual([(await rawStatsTube(server.url, t))?.pause, (await rawStatsTube(server.url, t))?.['pause-time-left']], ['0', '0']);
    const [after, afterText, twice] = await Promise.all([
      cli('stats', '--tube', t, '--json'),
      cli('stats', '--tube', t),
      cli('resume', '--tube', t, '--json'),
    ]);
    assert.equal((JSON.parse(after.stdout) as StatsJson).tubes[0]?.pausedSecondsLeft, 0);
    assert.equal(row(afterText.stdout, t)?.[9], '-');
    assert.deepEqual(JSON.parse(twice.stdout), { tube: t, pauseSeconds: 0, pausedSecondsLeft: 0, previousSecondsLeft: 0 });
    assert.equal((await cli('resume', '--tube', t)).stdout, `tube ${t} was not paused; nothing changed\n`);

    // The largest pause the protocol allows is taken as is.
    const longest = await cli('pause', '--tube', t, '--seconds', String(UINT32_MAX));
    assert.equal(longest.code, 0, longest.stderr);
    assert.equal((await rawStatsTube(server.url, t))?.pause, String(UINT32_MAX));
    assert.equal((await cli('pause', '--tube', t, '--seconds', '0')).code, 0);
    assert.equal((await rawStatsTube(server.url, t))?.pause, '0');
  });

  it('reports a binlog and drain mode', TEST_TIMEOUT, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bsworker-ops-stats-'));
    const durable = await startBeanstalkd({ binlogDir: dir });
    try {
      process.kill(durable.pid, 'SIGUSR1');
      await eventually(async () => assert.equal((await rawStats(durable.url)).draining, 'true'));
      const [json, text] = await Promise.all([run(['stats', '--json', '--url', durable.url]), run(['stats', '--url', durable.url])]);
      const report = JSON.parse(json.stdout) as StatsJson;
      assert.equal(report.server.binlog.enabled, true);
      assert.ok(report.server.binlog.currentIndex >= 1);
      assert.equal(report.server.draining, true);
      assert.match(text.stdout, /^binlog\s+on /m);
      assert.match(text.stdout, /^draining\s+yes/m);
    } finally {
      await durable.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bad input: one line and exit 2, and nothing changes', TEST_TIMEOUT, async () => {
    const t = prefix('bad');
    const missing = prefix('missing');
    await rawPut(server.url, t, envelope('f', t, {}));
    const [statsMissing, pauseMissing, resumeMissing, badTube, colonTube, emptyTube, negative, tooBig, fraction, word, noSeconds, badUrl] =
      await Promise.all([
        cli('stats', '--tube', missing),
        cli('pause', '--tube', missing, '--seconds', '5'),
        cli('resume', '--tube', missing),
        cli('stats', '--tube', '-leading-dash'),
        cli('pause', '--tube', 'a:b', '--seconds', '5'),
        cli('resume', '--tube', ''),
        cli('pause', '--tube', t, '--seconds', '-1'),
        cli('pause', '--tube', t, '--seconds', String(UINT32_MAX + 1)),
        cli('pause', '--tube', t, '--seconds', '1.5'),
        cli('pause', '--tube', t, '--seconds', 'ten'),
        cli('pause', '--tube', t),
        run(['tubes', '--url', 'http://127.0.0.1:11300']),
      ]);
    for (const result of [statsMissing, pauseMissing, resumeMissing]) assertOneLine(result, `tube ${missing} does not exist`);
    assertUsage(badTube, /^bsworker: error: option '--tube <tube>' argument '-leading-dash' is invalid\..*tube name/);
    assertUsage(colonTube, /^bsworker: error: option '--tube <tube>' argument 'a:b' is invalid\..*tube name/);
    assertUsage(emptyTube, /^bsworker: error: option '--tube <tube>' argument '' is invalid\./);
    for (const [result, value] of [
      [negative, '-1'],
      [tooBig, String(UINT32_MAX + 1)],
      [fraction, '1.5'],
      [word, 'ten'],
    ] as const) {
      assertUsage(
        result,
        new RegExp(
          `^bsworker: error: option '--seconds <n>' argument '${value}' is invalid\\. expected a whole number from 0 to ${UINT32_MAX}$`,
        ),
      );
    }
    assertUsage(noSeconds, /^bsworker: error: required option '--seconds <n>' not specified$/);
    assertUsage(badUrl, /^bsworker: error: option '--url <url>' argument 'http:\/\/127\.0\.0\.1:11300' is invalid\./);
    // The failed pauses paused nothing, and asking about a missing tube did not create it.
    assert.equal((await rawStatsTube(server.url, t))?.pause, '0');
    assert.equal(await rawStatsTube(server.url, missing), null);
  });

  it('an unreachable server: exit 2 promptly, naming the address and how to start beanstalkd', TEST_TIMEOUT, async () => {
    const port = await freePort();
    const url = `127.0.0.1:${port}`;
    const started = Date.now();
    const results = await Promise.all([
      run(['stats', '--url', url]),
      run(['tubes', '--json', '--url', url]),
      run(['pause', '--tube', 'emails', '--seconds', '5', '--url', url]),
      run(['resume', '--tube', 'emails', '--url', url]),
    ]);
    assert.ok(Date.now() - started < 8_000, 'no long retry');
    for (const result of results) {
      assertOneLine(result, `could not connect to beanstalkd at ${url}`);
      assert.ok(result.stderr.includes(`beanstalkd -l 127.0.0.1 -p ${port}`), result.stderr);
    }
  });
});
