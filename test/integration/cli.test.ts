// The real `bsworker` binary against a real beanstalkd: the worker command with fixture jobs modules,
// signals, the buried-job commands, usage errors and an unreachable server. Every wait is bounded and
// awaits something the child says (a JSON log line, its exit) or the server's own view of a job.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BeanstalkdServer, freePort, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import {
  Cli,
  children,
  DIST_INDEX,
  describeExit,
  envelope,
  eventually,
  type LogLine,
  prefix,
  REPO,
  run,
  writeFixtureJobs,
} from '../helpers/cli.js';
import { bury, rawSession } from '../helpers/raw-session.js';

const TEST_TIMEOUT = { timeout: 30_000 };

describe('bsworker CLI', () => {
  let server: BeanstalkdServer;
  let temp: string;
  let jobsDir: string;
  let version: string;

  const worker = (p: string, args: string[], env: Record<string, string> = {}): Cli =>
    new Cli(['--jobs', jobsDir, '--url', server.url, ...args], { FIXTURE_PREFIX: p, ...env });
  const completed = (cli: Cli, id: string): Promise<LogLine> =>
    cli.waitForLine((l) => l.msg === 'job completed' && l.jobId === id, `'job completed' for job ${id}`);

  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-cli-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir);
    version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  });

  after(async () => {
    for (const cli of children) {
      if (cli.child.pid !== undefined && !cli.exit) process.kill(cli.child.pid, 'SIGKILL');
    }
    await Promise.all([...children].map((cli) => cli.exited));
    await server?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('runs jobs from --tubes (.mjs and .ts modules), deletes them and logs "job completed"', TEST_TIMEOUT, async () => {
    const p = prefix();
    const cli = worker(p, ['--tubes', `${p}-fast,${p}-ts`]);
    const fastId = await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { n: 1 }));
    const tsId = await rawPut(server.url, `${p}-ts`, envelope('greet', `${p}-ts`, { name: 'Ann' }));

    const fastLine = await completed(cli, fastId);
    assert.equal(fastLine.tube, `${p}-fast`);
    assert.equal(fastLine.task, 'fast');
    const tsLine = await completed(cli, tsId);
    assert.equal(tsLine.tube, `${p}-ts`);
    assert.equal(tsLine.task, 'greet');
    assert.ok(cli.lines.some((l) => l.msg === 'fixture: fast ran' && (l.kwargs as { n?: number }).n === 1));
    assert.ok(cli.lines.some((l) => l.msg === 'fixture: greet ran' && l.greeting === 'hello, Ann'));
    assert.equal(await rawStatsJob(server.url, fastId), null);
    assert.equal(await rawStatsJob(server.url, tsId), null);

    // An idle worker stops on SIGTERM without complaint.
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('on SIGTERM lets the running job finish, deletes it and exits 0', TEST_TIMEOUT, async () => {
    const p = prefix();
    const releaseFile = join(temp, `${p}.release`);
    const cli = worker(p, ['--tubes', `${p}-slow`]);
    const id = await rawPut(server.url, `${p}-slow`, envelope('slow', `${p}-slow`, { token: p, releaseFile }));
    await cli.waitForLine((l) => l.msg === 'fixture: slow started' && l.token === p, 'fixture: slow started');

    cli.signal('SIGTERM');
    await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGTERM: stopping'), 'SIGTERM: stopping');
    // Still running and still reserved: the stop waits for it.
    assert.equal((await rawStatsJob(server.url, id))?.state, 'reserved');
    await writeFile(releaseFile, '');

    await completed(cli, id);
    assert.equal((await cli.waitForExit()).code, 0);
    assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('on a second SIGTERM gives the running job back at once and exits non-zero', TEST_TIMEOUT, async () => {
    const p = prefix();
    const cli = worker(p, ['--tubes', `${p}-slow`]);
    // A TTR of 60 s: the job can only be ready within the bound below if the worker gave it back.
    const body = envelope('slow', `${p}-slow`, { token: p, releaseFile: join(temp, `${p}.never`) });
    const id = await rawPut(server.url, `${p}-slow`, body, { ttr: 60 });
    await cli.waitForLine((l) => l.msg === 'fixture: slow started', 'fixture: slow started');

    cli.signal('SIGTERM');
    // Two signals sent back to back may merge into one; wait until the first has been handled.
    await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGTERM: stopping'), 'SIGTERM: stopping');
    cli.signal('SIGTERM');
    await cli.waitForLine((l) => l.msg === 'stopping: giving the running job back to beanstalkd', 'giving the job back');

    await eventually(async () => {
      const stats = await rawStatsJob(server.url, id);
      assert.equal(stats?.state, 'ready');
      assert.equal(stats?.timeouts, '0', 'given back by the worker, not by a TTR timeout');
    });
    const exit = await cli.waitForExit(5_000);
    assert.notEqual(exit.code, 0);
    assert.notEqual(exit.code, null, `exited by ${describeExit(exit)}, not with a code`);
  });

  it('--concurrency 3: SIGTERM lets all three running jobs finish and be deleted, exit 0', TEST_TIMEOUT, async () => {
    const p = prefix();
    const releaseFile = join(temp, `${p}.release`);
    const cli = worker(p, ['--tubes', `${p}-slow`, '--concurrency', '3']);
    const tokens = ['a', 'b', 'c'].map((t) => `${p}-${t}`);
    const ids = await Promise.all(
      tokens.map((token) => rawPut(server.url, `${p}-slow`, envelope('slow', `${p}-slow`, { token, releaseFile }))),
    );
    // All three started before any finished: they run at once, one per slot.
    for (const token of tokens) await cli.waitForLine((l) => l.msg === 'fixture: slow started' && l.token === token, `${token} started`);

    cli.signal('SIGTERM');
    await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGTERM: stopping'), 'SIGTERM: stopping');
    for (const id of ids) assert.equal((await rawStatsJob(server.url, id))?.state, 'reserved', 'the stop waits for every running job');
    await writeFile(releaseFile, '');
    for (const id of ids) await completed(cli, id);
    assert.equal((await cli.waitForExit()).code, 0);
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('--concurrency 2: a second SIGTERM gives both running jobs back at once', TEST_TIMEOUT, async () => {
    const p = prefix();
    const cli = worker(p, ['--tubes', `${p}-slow`, '--concurrency', '2']);
    const tokens = ['a', 'b'].map((t) => `${p}-${t}`);
    const ids = await Promise.all(
      tokens.map((token) =>
        rawPut(server.url, `${p}-slow`, envelope('slow', `${p}-slow`, { token, releaseFile: join(temp, `${p}.never`) }), { ttr: 60 }),
      ),
    );
    for (const token of tokens) await cli.waitForLine((l) => l.msg === 'fixture: slow started' && l.token === token, `${token} started`);
    cli.signal('SIGTERM');
    await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGTERM: stopping'), 'SIGTERM: stopping');
    cli.signal('SIGTERM');
    await eventually(async () => {
      for (const id of ids) assert.equal((await rawStatsJob(server.url, id))?.state, 'ready');
    });
    const exit = await cli.waitForExit(5_000);
    assert.notEqual(exit.code, 0);
  });

  it('after --grace-ms gives a still-running job back and exits non-zero', TEST_TIMEOUT, async () => {
    const p = prefix();
    const cli = worker(p, ['--tubes', `${p}-slow`, '--grace-ms', '200']);
    const id = await rawPut(server.url, `${p}-slow`, envelope('slow', `${p}-slow`, { token: p, releaseFile: join(temp, `${p}.never`) }));
    await cli.waitForLine((l) => l.msg === 'fixture: slow started', 'fixture: slow started');

    cli.signal('SIGTERM');
    const line = await cli.waitForLine((l) => l.msg === 'stopping: giving the running job back to beanstalkd', 'giving the job back');
    assert.equal(line.why, 'grace period over');
    await eventually(async () => assert.equal((await rawStatsJob(server.url, id))?.state, 'ready'));
    const exit = await cli.waitForExit(5_000);
    assert.notEqual(exit.code, 0);
    assert.notEqual(exit.code, null, `exited by ${describeExit(exit)}, not with a code`);
  });

  describe('buried jobs: kick, kick-job, buried', () => {
    it('kick --bound 1 kicks one buried job, kick kicks the rest', TEST_TIMEOUT, async () => {
      const t = prefix();
      const ids = [];
      for (let n = 0; n < 3; n += 1) ids.push(await rawPut(server.url, t, envelope('fast', t, { n })));
      await bury(server, ids);

      const one = await run(['kick', '--tube', t, '--bound', '1', '--url', server.url]);
      assert.equal(one.code, 0, one.stderr);
      assert.equal(one.stdout, `kicked 1 buried job in tube ${t} (2 still buried)\n`);
      let tube = await rawStatsTube(server.url, t);
      assert.deepEqual([tube?.['current-jobs-ready'], tube?.['current-jobs-buried']], ['1', '2']);
      // Buried jobs are kicked oldest first (FIFO), so the first one is ready now.
      assert.equal((await rawStatsJob(server.url, ids[0] as string))?.state, 'ready');

      const rest = await run(['kick', '--tube', t, '--url', server.url]);
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal(rest.stdout, `kicked 2 buried jobs in tube ${t} (0 still buried)\n`);
      tube = await rawStatsTube(server.url, t);
      assert.deepEqual([tube?.['current-jobs-ready'], tube?.['current-jobs-buried']], ['3', '0']);
    });

    it('kick moves only buried jobs: a tube with just a delayed job kicks nothing', TEST_TIMEOUT, async () => {
      const t = prefix();
      const id = await rawPut(server.url, t, envelope('fast', t, {}), { delay: 3_600 });
      const result = await run(['kick', '--tube', t, '--url', server.url]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `no buried jobs in tube ${t}\n`);
      assert.equal((await rawStatsJob(server.url, id))?.state, 'delayed');
    });

    it('kick-job kicks one buried job; an unknown, non-buried or malformed id exits 2', TEST_TIMEOUT, async () => {
      const t = prefix();
      const id = await rawPut(server.url, t, envelope('fast', t, {}));
      await bury(server, [id]);

      const kicked = await run(['kick-job', id, '--url', server.url]);
      assert.equal(kicked.code, 0, kicked.stderr);
      assert.equal(kicked.stdout, `kicked job ${id} (was buried in tube ${t}, now ready)\n`);
      assert.equal((await rawStatsJob(server.url, id))?.state, 'ready');

      const [unknown, ready, malformed] = await Promise.all([
        run(['kick-job', '99999999', '--url', server.url]),
        run(['kick-job', id, '--url', server.url]),
        run(['kick-job', 'abc', '--url', server.url]),
      ]);
      assert.equal(unknown.code, 2);
      assert.equal(unknown.stderr, 'bsworker: error: job 99999999 does not exist\n');
      assert.equal(ready.code, 2);
      assert.equal(ready.stderr, `bsworker: error: job ${id} is ready; only buried or delayed jobs can be kicked\n`);
      assert.equal(malformed.code, 2);
      assert.match(malformed.stderr, /^bsworker: error: .*'abc'.*job id/m);
      assert.equal((await rawStatsJob(server.url, id))?.state, 'ready');
    });

    it('buried shows the first buried job: id, func_name, kwargs, kicks and age', TEST_TIMEOUT, async () => {
      const t = prefix();
      const id = await rawPut(server.url, t, envelope('fast', t, { to: 'ann@example.com', n: 2 }));
      // Bury, kick, bury again, so that the kick count shown is a real one.
      await bury(server, [id]);
      assert.deepEqual(await rawSession(server.port, [`kick-job ${id}`]), ['KICKED']);
      await bury(server, [id]);
      const second = await rawPut(server.url, t, envelope('fast', t, { n: 3 }));
      await bury(server, [second]);

      const result = await run(['buried', '--tube', t, '--url', server.url]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.split('\n');
      assert.equal(lines[0], `tube ${t}: 2 buried jobs`);
      assert.match(result.stdout, new RegExp(`^\\s+id:\\s+${id}$`, 'm'));
      assert.match(result.stdout, /^\s+func_name:\s+"fast"$/m, 'func_name is printed JSON-quoted');
      assert.ok(
        lines.some((line) => /^\s+kwargs:\s+/.test(line) && line.includes('{"to":"ann@example.com","n":2}')),
        result.stdout,
      );
      assert.match(result.stdout, /^\s+kicks:\s+1$/m);
      assert.match(result.stdout, /^\s+age:\s+\d+s$/m);

      const empty = await run(['buried', '--tube', prefix(), '--url', server.url]);
      assert.equal(empty.code, 0, empty.stderr);
      assert.match(empty.stdout, /: 0 buried jobs\n$/);
    });

    it('buried shows a non-JSON body raw and says it is not a bsworker job', TEST_TIMEOUT, async () => {
      const t = prefix();
      const id = await rawPut(server.url, t, 'plain text, <not> JSON');
      await bury(server, [id]);
      const result = await run(['buried', '--tube', t, '--url', server.url]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^\\s+id:\\s+${id}$`, 'm'));
      const bodyLine = result.stdout.split('\n').find((line) => line.includes('plain text, <not> JSON'));
      assert.ok(bodyLine, result.stdout);
      assert.match(bodyLine, /not a bsworker job/);
      assert.doesNotMatch(result.stdout, /func_name:/);
    });
  });

  describe('failures', () => {
    it('buries a failing job; bsworker kick runs it again and it is buried again', TEST_TIMEOUT, async () => {
      const p = prefix();
      const tube = `${p}-fail`;
      const cli = worker(p, ['--tubes', tube]);
      const id = await rawPut(server.url, tube, envelope('fail', tube, { orderId: 7 }));

      const first = await cli.waitForLine((l) => l.msg === 'job failed; buried' && l.jobId === id, 'first job buried');
      assert.equal(first.kicks, 0);
      assert.match(JSON.stringify(first.err), /order 7/, 'the failure line carries the error');
      // The failure record travels in a copy with a new id, named by the line.
      const copy = String(first.buriedAs);
      assert.equal((await rawStatsJob(server.url, copy))?.state, 'buried');
      assert.equal(await rawStatsJob(server.url, id), null);

      const kick = await run(['kick', '--tube', tube, '--url', server.url]);
      assert.equal(kick.code, 0, kick.stderr);
      assert.match(kick.stdout, /^kicked 1 buried job /);

      const second = await cli.waitForLine(
        (l) => l.msg === 'job failed; buried' && l.jobId === copy && l.kicks === 1,
        'second job buried (kicks 1)',
      );
      const stats = await rawStatsJob(server.url, String(second.buriedAs));
      assert.deepEqual([stats?.state, stats?.kicks, stats?.reserves], ['buried', '0', '1'], 'a fresh copy: its own counters start again');
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0);
    });

    it('--max-kicks 1: after one kick the next failure deletes the job and logs its body', TEST_TIMEOUT, async () => {
      const p = prefix();
      const tube = `${p}-fail`;
      const cli = worker(p, ['--tubes', tube, '--max-kicks', '1']);
      const body = envelope('fail', tube, { orderId: 8 });
      const id = await rawPut(server.url, tube, body);

      const buried = await cli.waitForLine((l) => l.msg === 'job failed; buried' && l.jobId === id, 'job buried');
      const copy = String(buried.buriedAs);
      const kick = await run(['kick', '--tube', tube, '--url', server.url]);
      assert.equal(kick.code, 0, kick.stderr);

      const deleted = await cli.waitForLine(
        (l) => l.jobId === copy && typeof l.msg === 'string' && l.msg.includes('deleted'),
        'job deleted after max kicks',
      );
      assert.equal(deleted.level, 50, 'logged at error level');
      const logged = JSON.parse(String(deleted.body));
      assert.deepEqual(logged.kwargs, JSON.parse(body).kwargs, 'the body logged is the job, with its failure history');
      assert.equal(logged.meta.failures.length, 1);
      assert.match(JSON.stringify(deleted.err), /payment failed for order 8/);
      assert.equal(await rawStatsJob(server.url, copy), null);
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0);
    });
  });

  describe('usage errors exit 2', () => {
    it('rejects bad options with commander-style messages', TEST_TIMEOUT, async () => {
      const p = prefix();
      const cases: [string, string[], RegExp][] = [
        ['no --tubes', [], /^bsworker: error: required option '-t, --tubes <tubes>' not specified$/m],
        [
          'a bad tube name',
          ['--tubes', 'bad tube'],
          /^bsworker: error: option '-t, --tubes <tubes>' argument 'bad tube' is invalid\..*tube name/m,
        ],
        [
          '--max-kicks -1',
          ['--tubes', `${p}-fast`, '--max-kicks', '-1'],
          /^bsworker: error: option '--max-kicks <n>' argument '-1' is invalid/m,
        ],
        [
          '--url http://x',
          ['--tubes', `${p}-fast`, '--url', 'http://x'],
          /^bsworker: error: option '--url <url>' argument 'http:\/\/x' is invalid.*beanstalk:\/\//m,
        ],
        [
          '--log-level loud',
          ['--tubes', `${p}-fast`, '--log-level', 'loud'],
          /^bsworker: error: option '--log-level <level>' argument 'loud' is invalid/m,
        ],
        ['an unknown option', ['--tubes', `${p}-fast`, '--bogus'], /^bsworker: error: unknown option '--bogus'$/m],
      ];
      const results = await Promise.all(cases.map(([, args]) => run(['--jobs', jobsDir, ...args], { FIXTURE_PREFIX: p })));
      results.forEach((result, i) => {
        const [name, , message] = cases[i] as [string, string[], RegExp];
        assert.equal(result.code, 2, `${name}: exit code (stderr: ${result.stderr})`);
        assert.match(result.stderr, message, name);
        assert.equal(result.stdout, '', `${name}: nothing on stdout`);
      });
    });

    it('rejects an unknown LOG_LEVEL from the environment as a usage error', TEST_TIMEOUT, async () => {
      const p = prefix();
      const result = await run(['--jobs', jobsDir, '--tubes', `${p}-fast`, '--url', server.url], {
        FIXTURE_PREFIX: p,
        LOG_LEVEL: 'verbose',
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^bsworker: error: .*`verbose`.*LOG_LEVEL/m);
    });

    it('rejects a missing jobs directory, a module that throws on import, and tubes no task serves', TEST_TIMEOUT, async () => {
      const p = prefix();
      const badDir = join(temp, `${p}-bad`);
      await mkdir(badDir);
      await writeFile(join(badDir, 'fine.mjs'), 'export const fine = 1;\n');
      await writeFile(join(badDir, 'boom.mjs'), "throw new Error('fixture: boom at import');\n");
      const missing = join(temp, `${p}-missing`);

      const [noDir, throws, unserved] = await Promise.all([
        run(['--tubes', `${p}-fast`, '--jobs', missing, '--url', server.url]),
        run(['--tubes', `${p}-fast`, '--jobs', badDir, '--url', server.url]),
        run(['--tubes', `${p}-nothing,${p}-none`, '--jobs', jobsDir, '--url', server.url], { FIXTURE_PREFIX: p }),
      ]);
      for (const [name, result] of [
        ['missing dir', noDir],
        ['throwing module', throws],
        ['unserved tubes', unserved],
      ] as const) {
        assert.equal(result.code, 2, `${name}: exit code (stderr: ${result.stderr})`);
        // An import error is followed by where it threw (indented stack frames of the module).
        assert.match(result.stderr, /^bsworker: error: .+\n( {4}at .+\n)*$/, `${name}: one error line`);
      }
      assert.match(throws.stderr, /\n {4}at .*boom\.mjs:1:7\n/, 'the file and line of the throw');
      assert.ok(noDir.stderr.includes(missing) && noDir.stderr.includes('does not exist'), noDir.stderr);
      assert.match(throws.stderr, /failed to load \S*boom\.mjs: fixture: boom at import/);
      assert.ok(unserved.stderr.includes(`\`${p}-nothing\``), unserved.stderr);
      assert.ok(unserved.stderr.includes(`${p}-fast: fast`), `the message lists what was registered: ${unserved.stderr}`);
      assert.ok(unserved.stderr.includes(`${p}-ts: greet`), unserved.stderr);
    });

    it('warns about a watched tube without a task but runs the others', TEST_TIMEOUT, async () => {
      const p = prefix();
      const cli = worker(p, ['--tubes', `${p}-fast,${p}-none`]);
      const warning = await cli.waitForLine((l) => l.level === 40 && l.tube === `${p}-none`, 'warning about the unserved tube');
      assert.match(String(warning.msg), /no task is registered/);

      const id = await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, {}));
      await completed(cli, id);
      // A job in the unserved tube is buried, not run or lost.
      const stray = await rawPut(server.url, `${p}-none`, envelope('fast', `${p}-none`, {}));
      const line = await cli.waitForLine(
        (l) => l.jobId === stray && typeof l.msg === 'string' && l.msg.startsWith('job buried'),
        'stray buried',
      );
      assert.equal((await rawStatsJob(server.url, String(line.buriedAs)))?.state, 'buried');
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0);
    });
  });

  it(
    'unreachable server: the worker exits 1 after --connect-timeout, operating commands exit 2 at once, naming the address',
    TEST_TIMEOUT,
    async () => {
      const p = prefix();
      const port = await freePort();
      const url = `127.0.0.1:${port}`;
      const started = Date.now();
      const results = await Promise.all([
        // Without --connect-timeout the worker waits for the server (see cli-wait.test.ts).
        run(['--tubes', `${p}-fast`, '--jobs', jobsDir, '--url', url, '--connect-timeout', '1'], { FIXTURE_PREFIX: p }),
        run(['kick', '--tube', `${p}-fast`, '--url', url]),
        run(['buried', '--tube', `${p}-fast`, '--url', url]),
      ]);
      assert.ok(Date.now() - started < 5_000, 'no hang, no long retry');
      // The worker failed at run time; for an operating command the address is bad input (issue: exit 2).
      for (const [i, result] of results.entries()) {
        assert.equal(result.code, i === 0 ? 1 : 2, result.stderr);
        assert.match(result.stderr, /^bsworker: error: .+\n$/, 'one line');
        assert.ok(result.stderr.includes(url), result.stderr);
        assert.ok(result.stderr.includes(`beanstalkd -l 127.0.0.1 -p ${port}`), result.stderr);
      }
    },
  );

  it('--help on the root and on every subcommand exits 0; --version prints the package version', TEST_TIMEOUT, async () => {
    const helps = [['--help'], ['kick', '--help'], ['kick-job', '--help'], ['buried', '--help']];
    const results = await Promise.all([...helps.map((args) => run(args)), run(['--version']), run(['-V'])]);
    helps.forEach((args, i) => {
      const result = results[i];
      assert.equal(result?.code, 0, `${args.join(' ')}: ${result?.stderr}`);
      assert.match(result?.stdout ?? '', new RegExp(`^Usage: bsworker${args.length > 1 ? ` ${args[0]}` : ''} `), args.join(' '));
    });
    for (const result of results.slice(helps.length)) {
      assert.equal(result?.code, 0);
      assert.equal(result?.stdout, `${version}\n`);
    }
  });

  it('--url reaches the jobs modules: a task puts a follow-up with its own JobQueue to the same server', TEST_TIMEOUT, async () => {
    const p = prefix();
    // The inherited BEANSTALKD_URL points nowhere: only --url can bring the follow-up to our server.
    const nowhere = `127.0.0.1:${await freePort()}`;
    const cli = worker(p, ['--tubes', `${p}-relay`], { BEANSTALKD_URL: nowhere });
    const id = await rawPut(server.url, `${p}-relay`, envelope('relay', `${p}-relay`, { from: p }));

    const relayed = await cli.waitForLine((l) => l.msg === 'fixture: relay put', 'fixture: relay put');
    await completed(cli, id);
    const followUp = await rawStatsJob(server.url, String(relayed.followUpId));
    assert.deepEqual([followUp?.tube, followUp?.state], [`${p}-next`, 'ready']);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('loads a .ts jobs module from a directory that is not "type": "module"', TEST_TIMEOUT, async () => {
    // Most TypeScript projects keep the CommonJS default and still write `import` in .ts files.
    const p = prefix();
    const dir = join(temp, `${p}-cjs`);
    await mkdir(dir);
    await writeFile(join(dir, 'package.json'), '{ "type": "commonjs" }\n');
    await writeFile(
      join(dir, 'tasks.ts'),
      `import { JobQueue } from ${JSON.stringify(DIST_INDEX)};
interface Kw { n: number }
const queue = new JobQueue();
export const double = queue.task('${p}-cjs')(async function double(kw: Kw): Promise<number> {
  return kw.n * 2;
});\n`,
    );
    const cli = new Cli(['--tubes', `${p}-cjs`, '--jobs', dir, '--url', server.url]);
    const id = await rawPut(server.url, `${p}-cjs`, envelope('double', `${p}-cjs`, { n: 2 }));
    await completed(cli, id);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });
});
