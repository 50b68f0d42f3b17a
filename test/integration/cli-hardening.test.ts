// The real `bsworker` against a real beanstalkd, on the edges of its input and output: kwargs input
// that never ends or is not UTF-8, a stdout closed by its reader, raw control characters in arguments,
// `help`, `top --json`, TypeScript modules of both module systems, import errors, --redact and
// --health-file. Every wait is bounded and awaits an exit, a log line or the server's view.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type BeanstalkdServer, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, DIST_INDEX, envelope, eventually, prefix, run, underPty, waitForText, writeFixtureJobs } from '../helpers/cli.js';

const TEST_TIMEOUT = { timeout: 30_000 };

/** One line on stderr, in the README's form, with no raw control character in it. */
function assertOneErrorLine(result: { code: number | null; stderr: string }, reason: RegExp, code = 2): void {
  assert.equal(result.code, code, result.stderr);
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `exactly one line: ${JSON.stringify(result.stderr)}`);
  assert.match(lines[0] ?? '', /^bsworker: error: /);
  assert.match(lines[0] ?? '', reason);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding raw control characters is the point.
  assert.doesNotMatch(lines[0] ?? '', /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/, 'no raw control character');
}

describe('bsworker on the edges of its input and output', () => {
  let server: BeanstalkdServer;
  let temp: string;
  let jobsDir: string;

  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-edges-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir, { typescript: false });
  });

  after(async () => {
    for (const cli of children) if (cli.child.pid !== undefined && !cli.exit) process.kill(cli.child.pid, 'SIGKILL');
    await Promise.all([...children].map((cli) => cli.exited));
    await server?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  describe('put: kwargs from a file or stdin', () => {
    it('an endless stdin is read only up to max-job-size: exit 2, one line, nothing put', TEST_TIMEOUT, async () => {
      const t = prefix('edge');
      const cli = new Cli(['put', t, 'f', '-', '--url', server.url]);
      cli.child.stdin.on('error', () => undefined);
      const chunk = Buffer.alloc(65_536, 0x20);
      const feed = (): void => {
        while (!cli.exit && cli.child.stdin.writable && cli.child.stdin.write(chunk));
        if (!cli.exit && cli.child.stdin.writable) cli.child.stdin.once('drain', feed);
      };
      feed();
      const exit = await cli.waitForExit();
      assertOneErrorLine({ code: exit.code, stderr: cli.stderr }, /stdin is larger than the server's max-job-size \(65535 bytes\)/);
      assert.equal(await rawStatsTube(server.url, t), null, 'nothing was put');
    });

    it('a --kwargs-file that never ends (/dev/zero) is refused the same way', TEST_TIMEOUT, async () => {
      const t = prefix('edge');
      const result = await run(['put', t, 'f', '--kwargs-file', '/dev/zero', '--url', server.url]);
      assertOneErrorLine(result, /--kwargs-file "\/dev\/zero" is larger than the server's max-job-size/);
      assert.equal(await rawStatsTube(server.url, t), null);
    });

    it('invalid UTF-8, in a file or on stdin, is refused instead of sent as U+FFFD', TEST_TIMEOUT, async () => {
      const t = prefix('edge');
      const file = join(temp, `${t}.json`);
      await writeFile(file, Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
      const fromFile = await run(['put', t, 'f', '--kwargs-file', file, '--url', server.url]);
      assertOneErrorLine(fromFile, /--kwargs-file ".*" is not valid UTF-8/);
      const cli = new Cli(['put', t, 'f', '-', '--url', server.url]);
      cli.child.stdin.end(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]));
      const exit = await cli.waitForExit();
      assertOneErrorLine({ code: exit.code, stderr: cli.stderr }, /stdin is not valid UTF-8/);
      assert.equal(await rawStatsTube(server.url, t), null);
    });

    it('on a terminal, says it is reading stdin and how to end it', TEST_TIMEOUT, async () => {
      const t = prefix('edge');
      const pty = underPty(['put', t, 'f', '-', '--url', server.url]);
      assert.ok(pty.child.stdout && pty.child.stdin);
      await waitForText(pty.child.stdout, pty.output, (text) => text.includes('reading kwargs from stdin; end with Ctrl-D'), 'the hint');
      pty.child.stdin.write('{"n": 1}\n\x04');
      assert.equal(await pty.exited, 0, pty.output());
      assert.equal((await rawStatsTube(server.url, t))?.['current-jobs-ready'], '1');
    });
  });

  describe('a closed stdout ends the command quietly with exit 0', () => {
    const closedStdout = (args: string[], env: Record<string, string> = {}): Cli => {
      const cli = new Cli(args, env);
      // The reader goes away before bsworker writes a byte, as `| head -1` does after its line.
      cli.child.stdout.destroy();
      return cli;
    };

    it('stats, tubes and top', TEST_TIMEOUT, async () => {
      await rawPut(server.url, prefix('edge'), envelope('f', 'x', {}));
      for (const args of [
        ['stats'],
        ['tubes'],
        ['top', '--iterations', '3', '--interval', '0.1'],
        ['top', '--json', '--iterations', '3'],
      ]) {
        const cli = closedStdout([...args, '--url', server.url]);
        const exit = await cli.waitForExit();
        assert.equal(exit.code, 0, `${args.join(' ')}: ${cli.stderr}`);
        assert.equal(cli.stderr, '', `${args.join(' ')} prints nothing on stderr`);
      }
    });

    it('the worker: it stops as on SIGTERM, and its job still runs to the end', TEST_TIMEOUT, async () => {
      const p = prefix('edge');
      const tube = `${p}-fast`;
      const id = await rawPut(server.url, tube, envelope('fast', tube, { n: 1 }));
      const cli = closedStdout(['--tubes', tube, '--jobs', jobsDir, '--url', server.url], { FIXTURE_PREFIX: p });
      const exit = await cli.waitForExit();
      assert.equal(exit.code, 0, cli.stderr);
      assert.equal(cli.stderr, '');
      // Either it ran the job before it noticed, or it stopped before reserving it: never half-done.
      const left = await rawStatsJob(server.url, id);
      assert.ok(left === null || left.state === 'ready', `job ${id} is ${left?.state}`);
    });
  });

  describe('usage errors', () => {
    it('escape raw control and bidi characters from the command line, one line with the bsworker prefix', TEST_TIMEOUT, async () => {
      for (const args of [
        ['put', 'x\r\nput 0 0 1 1', 'f'],
        ['put', 'a\x1b[31m', 'f'],
        ['--tubes', 'ok', '--bogus\x1b]0;pwned\x07'],
        ['peek', '12\u202E34'],
        ['stats', '--tube', 'b\u202Ec'],
      ]) {
        const result = await run([...args, '--url', server.url]);
        assertOneErrorLine(result, /./);
        assert.equal(result.stdout, '');
      }
    });

    it('bsworker with no arguments: the README form, not commander bare "error:"', TEST_TIMEOUT, async () => {
      assertOneErrorLine(await run([]), /^bsworker: error: required option '-t, --tubes <tubes>' not specified$/);
    });

    it('bsworker help and bsworker help COMMAND print what --help prints, exit 0', TEST_TIMEOUT, async () => {
      const [help, dashHelp, helpPut, putHelp] = await Promise.all([
        run(['help']),
        run(['--help']),
        run(['help', 'put']),
        run(['put', '--help']),
      ]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^Usage: bsworker \[options\] \[command\]/);
      assert.equal(help.stdout, dashHelp.stdout);
      assert.equal(helpPut.code, 0, helpPut.stderr);
      assert.equal(helpPut.stdout, putHelp.stdout);
      assert.match(helpPut.stdout, /^Usage: bsworker put /);
    });

    it('--help says where --log-level comes from and which extensions --jobs loads', TEST_TIMEOUT, async () => {
      const { stdout } = await run(['--help']);
      assert.match(stdout, /--log-level <level>[\s\S]*\(default: \$LOG_LEVEL, else\s+info\)/);
      assert.match(stdout, /\.mts/);
      assert.match(stdout, /\.cts/);
      assert.match(stdout, /--connect-timeout <seconds>/);
      assert.match(stdout, /--redact <keys>/);
      assert.match(stdout, /--health-file <path>/);
    });
  });

  it('top --json: one JSON object per refresh, tubes as stats --json has them, with rates and a time', TEST_TIMEOUT, async () => {
    const t = prefix('edge');
    await rawPut(server.url, t, envelope('f', t, {}));
    const result = await run(['top', '--json', '--iterations', '2', '--interval', '0.2', '--url', server.url]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, result.stdout);
    const [first, second] = lines.map(
      (line) => JSON.parse(line) as { at: string; server: Record<string, unknown>; tubes: Record<string, unknown>[] },
    );
    assert.ok(first && second);
    const stats = JSON.parse((await run(['stats', '--json', '--tube', t, '--url', server.url])).stdout) as {
      tubes: Record<string, unknown>[];
    };
    const tube = first.tubes.find((entry) => entry.name === t);
    assert.deepEqual(tube, { ...stats.tubes[0], inPerSecond: null, donePerSecond: null });
    assert.match(first.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof second.server.inPerSecond, 'number');
    assert.equal(second.server.version, first.server.version);
  });

  describe('jobs modules', () => {
    it('loads .mts (ESM) and .cts (CommonJS) TypeScript modules', TEST_TIMEOUT, async () => {
      const p = prefix('edge');
      const dir = join(temp, `${p}-ts`);
      await mkdir(dir);
      const dist = JSON.stringify(pathToFileURL(DIST_INDEX).href);
      // TypeScript-only syntax in both, so that neither loads without the compiler.
      // The CommonJS helper loads first (sorted by name) and leaves its mark for the ESM task to report.
      await writeFile(
        join(dir, 'a-helper.cts'),
        `interface Mark { cjs: boolean; greeting: string }\nconst greet = (name: string): string => \`hello, \${name}\`;\nconst mark: Mark = { cjs: typeof require === 'function' && typeof module === 'object', greeting: greet('cts') };\n(globalThis as { ctsMark?: Mark }).ctsMark = mark;\nmodule.exports = { greet };\n`,
      );
      await writeFile(
        join(dir, 'b-task.mts'),
        `import { JobQueue } from ${dist};\ninterface Kw { n: number }\nconst queue = new JobQueue();\nexport const esm = queue.task('${p}-mts')(async function esm(kw: Kw): Promise<void> {\n  const mark = (globalThis as { ctsMark?: unknown }).ctsMark;\n  process.stdout.write(JSON.stringify({ msg: 'fixture: mts ran', n: kw.n satisfies number, mark }) + '\\n');\n});\n`,
      );
      const cli = new Cli(['--tubes', `${p}-mts`, '--jobs', dir, '--url', server.url]);
      await rawPut(server.url, `${p}-mts`, envelope('esm', `${p}-mts`, { n: 1 }));
      const line = await cli.waitForLine((l) => l.msg === 'fixture: mts ran' && l.n === 1, 'the .mts task');
      assert.deepEqual(line.mark, { cjs: true, greeting: 'hello, cts' }, 'the .cts module ran, as CommonJS');
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0);
    });

    it('a module that throws at import: the error line, then where (file and line), a few lines, not fifty', TEST_TIMEOUT, async () => {
      const dir = join(temp, `${prefix('edge')}-bad`);
      await mkdir(dir);
      await writeFile(join(dir, 'bad.mjs'), 'function inner() {\n  throw new Error("no API key");\n}\ninner();\n');
      const result = await run(['--tubes', 'x', '--jobs', dir, '--url', server.url]);
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^bsworker: error: failed to load .*bad\.mjs: no API key$/);
      assert.ok(lines.length >= 2 && lines.length <= 6, `${lines.length} lines:\n${result.stderr}`);
      assert.match(lines[1] ?? '', /^ {4}at inner \(.*bad\.mjs:2:9\)$/);
      assert.ok(!result.stderr.includes('node:internal'), 'no frames of Node loader');

      const syntax = join(temp, `${prefix('edge')}-syntax`);
      await mkdir(syntax);
      await writeFile(join(syntax, 'broken.mjs'), 'export const a = 1;\nconst b = ;\n');
      const broken = await run(['--tubes', 'x', '--jobs', syntax, '--url', server.url]);
      assert.equal(broken.code, 2, broken.stderr);
      assert.match(broken.stderr, /broken\.mjs:2\n/, 'the line of the syntax error');
    });
  });

  describe('--redact and --health-file', () => {
    it('--redact KEYS is taken (and BSWORKER_REDACT), the worker runs; an empty list is a usage error', TEST_TIMEOUT, async () => {
      const p = prefix('edge');
      const tube = `${p}-fast`;
      const cli = new Cli(['--tubes', tube, '--jobs', jobsDir, '--url', server.url, '--redact', 'password,token'], { FIXTURE_PREFIX: p });
      const id = await rawPut(server.url, tube, envelope('fast', tube, { password: 'x' }));
      await cli.waitForLine((l) => l.msg === 'job completed' && l.jobId === id, 'job completed');
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0, cli.stderr);
      assertOneErrorLine(await run(['--tubes', tube, '--redact', ' , ']), /--redact.*at least one kwargs key/);
      const fromEnv = await run(['--tubes', tube, '--jobs', jobsDir, '--url', server.url, '--connect-timeout', 'x'], {
        BSWORKER_REDACT: 'password',
      });
      assertOneErrorLine(fromEnv, /--connect-timeout/);
    });

    it('--health-file: written at start, rewritten every 5 s while the worker runs, removed on stop', { timeout: 40_000 }, async () => {
      const p = prefix('edge');
      const file = join(temp, `${p}.health`);
      const cli = new Cli(['--tubes', `${p}-fast`, '--jobs', jobsDir, '--url', server.url, '--health-file', file], {
        FIXTURE_PREFIX: p,
      });
      await cli.waitForLine((l) => l.msg === 'worker started', 'worker started');
      await eventually(async () => {
        await stat(file);
      });
      const first = (await readFile(file, 'utf8')).trim();
      assert.ok(Math.abs(Date.parse(first) - Date.now()) < 5_000, `a fresh time: ${first}`);
      // The next write comes 5 s later: polled for, with room for a slow machine.
      await eventually(async () => assert.notEqual((await readFile(file, 'utf8')).trim(), first), 9_000);
      cli.signal('SIGTERM');
      assert.equal((await cli.waitForExit()).code, 0, cli.stderr);
      await assert.rejects(stat(file), { code: 'ENOENT' });
    });
  });
});
