// The real `bsworker` against a real beanstalkd: `top` off a terminal, under a pseudo-terminal and on
// Ctrl-C; `kick --all-tubes`; the `--json` shapes of kick, kick-job and buried. Every count asserted is
// checked against the server's own view (rawStatsTube, rawStatsJob), never against the code under test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BeanstalkdServer, freePort, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, envelope, prefix, run, underPty, waitForText } from '../helpers/cli.js';
import { bury, rawSession } from '../helpers/raw-session.js';

const TEST_TIMEOUT = { timeout: 20_000 };
const ESC = '\x1b';

/** Puts `count` envelope jobs into `tube`; resolves to their ids. */
async function putJobs(server: BeanstalkdServer, tube: string, count: number, options: { delay?: number } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n += 1) ids.push(await rawPut(server.url, tube, envelope('send', tube, { n }), options));
  return ids;
}

/** The `key=value` fields of one plain `top` line. */
function fields(line: string): Record<string, string> {
  return Object.fromEntries(
    line
      .split(' ')
      .slice(1)
      .filter((part) => part.includes('='))
      .map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]),
  );
}

/** `top`'s plain lines for `tube`, in order (one per refresh). */
function tubeLines(stdout: string, tube: string): Record<string, string>[] {
  return stdout
    .split('\n')
    .filter((line) => line.includes(` tube=${tube} `))
    .map(fields);
}

describe('bsworker top, kick --all-tubes and the --json of kick, kick-job and buried', () => {
  let server: BeanstalkdServer;

  before(async () => {
    server = await startBeanstalkd();
  });

  after(async () => {
    for (const cli of children) {
      if (cli.child.pid !== undefined && !cli.exit) process.kill(cli.child.pid, 'SIGKILL');
    }
    await Promise.all([...children].map((cli) => cli.exited));
    await server?.stop();
  });

  describe('top', () => {
    it('off a terminal: plain lines with the server counts, then rates that see jobs put meanwhile', TEST_TIMEOUT, async () => {
      const t = prefix('top');
      const ids = await putJobs(server, t, 3);
      await putJobs(server, t, 1, { delay: 3_600 });
      await bury(server, ids.slice(0, 1));
      const before = await rawStatsTube(server.url, t);

      const cli = new Cli(['top', '--iterations', '3', '--interval', '1', '--url', server.url]);
      await waitForText(
        cli.child.stdout,
        () => cli.stdout,
        (text) => tubeLines(text, t).length >= 1,
        `a first line for ${t}`,
      );
      // Between the first frame and the next ones: these show up as "in" only in a later frame's rate.
      await putJobs(server, t, 4);
      const exit = await cli.waitForExit();
      assert.equal(exit.code, 0, cli.stderr);
      assert.equal(cli.stderr, '');
      assert.ok(!cli.stdout.includes(ESC), `no escape codes off a terminal: ${JSON.stringify(cli.stdout)}`);

      const frames = tubeLines(cli.stdout, t);
      assert.equal(frames.length, 3, cli.stdout);
      const [first, ...rest] = frames;
      assert.deepEqual(
        first && ['ready', 'reserved', 'delayed', 'buried', 'waiting', 'watching'].map((key) => first[key]),
        [
          'current-jobs-ready',
          'current-jobs-reserved',
          'current-jobs-delayed',
          'current-jobs-buried',
          'current-waiting',
          'current-watching',
        ].map((key) => before?.[key]),
      );
      assert.deepEqual([first?.['in/s'], first?.['done/s']], ['-', '-'], 'the first frame has no rates');
      for (const frame of rest) {
        for (const key of ['in/s', 'done/s']) assert.ok(Number(frame[key]) >= 0, `${key}=${frame[key]} is a number >= 0`);
      }
      assert.ok(
        rest.some((frame) => Number(frame['in/s']) > 0),
        `a frame after the puts shows in/s > 0:\n${cli.stdout}`,
      );
      assert.equal(rest.at(-1)?.ready, '6', 'the last frame counts the new jobs');
      // One server line per refresh, before the tubes.
      assert.equal(cli.stdout.split('\n').filter((line) => / server connections=\d+ tubes=\d+ /.test(line)).length, 3);
    });

    it('under a pseudo-terminal: redraws in place with the tube in a table, and shows the cursor at the end', TEST_TIMEOUT, async () => {
      const t = prefix('top');
      await putJobs(server, t, 2);
      const pty = underPty(['top', '--iterations', '2', '--interval', '1', '--url', server.url]);
      assert.equal(await pty.exited, 0, pty.output());
      const output = pty.output();
      assert.ok(output.includes(`${ESC}[?25l`), 'the cursor is hidden while drawing');
      assert.ok(output.includes(`${ESC}[H${ESC}[2J`), 'the screen is cleared and the cursor sent home');
      assert.equal(output.split(`${ESC}[H`).length - 1, 2, 'each of the 2 frames starts at home');
      assert.ok(output.includes(t), output);
      assert.match(output, new RegExp(`│ ${t} +│ +2 │`), 'a table row for the tube, with its 2 ready jobs');
      assert.match(output, new RegExp(`${ESC}\\[\\?25h\\s*$`), 'the cursor is shown again at the end');
    });

    it('Ctrl-C under a pseudo-terminal: exits 0, leaves the last frame and shows the cursor', TEST_TIMEOUT, async () => {
      const t = prefix('top');
      await putJobs(server, t, 1);
      const pty = underPty(['top', '--url', server.url]);
      assert.ok(pty.child.stdout && pty.child.stdin);
      await waitForText(pty.child.stdout, pty.output, (text) => text.includes(t) && text.includes(`${ESC}[J`), 'a first frame');
      // ^C typed into the terminal: the line discipline turns it into SIGINT for bsworker.
      pty.child.stdin.write('\x03');
      assert.equal(await pty.exited, 0, pty.output());
      const output = pty.output();
      assert.match(output, new RegExp(`${ESC}\\[\\?25h\\s*$`), 'the cursor is shown again');
      assert.ok(output.lastIndexOf(t) > output.lastIndexOf(`${ESC}[H`), 'the last frame is left on the screen');
    });

    it('SIGINT off a terminal: exits 0 without an error', TEST_TIMEOUT, async () => {
      const cli = new Cli(['top', '--interval', '1', '--url', server.url]);
      await waitForText(
        cli.child.stdout,
        () => cli.stdout,
        (text) => / server connections=/.test(text),
        'a first frame',
      );
      cli.signal('SIGINT');
      const exit = await cli.waitForExit();
      assert.deepEqual([exit.code, exit.signal], [0, null], cli.stderr);
      assert.equal(cli.stderr, '');
    });

    it('exits 2 on a bad --interval and on an unreachable server', TEST_TIMEOUT, async () => {
      const port = await freePort();
      const [zero, word, unreachable] = await Promise.all([
        run(['top', '--interval', '0', '--url', server.url]),
        run(['top', '--interval', 'fast', '--url', server.url]),
        run(['top', '--iterations', '1', '--url', `127.0.0.1:${port}`]),
      ]);
      for (const result of [zero, word]) {
        assert.equal(result.code, 2, result.stderr);
        assert.match(
          result.stderr,
          /^bsworker: error: option '--interval <seconds>' argument '.*' is invalid\. expected a number of seconds/m,
        );
        assert.equal(result.stdout, '');
      }
      assert.equal(unreachable.code, 2, unreachable.stderr);
      assert.match(unreachable.stderr, /^bsworker: error: .+\n$/);
      assert.ok(unreachable.stderr.includes(`beanstalkd -l 127.0.0.1 -p ${port}`), unreachable.stderr);
      assert.equal(unreachable.stdout, '', 'no frame, no escape codes');
    });
  });

  describe('kick', () => {
    it('--all-tubes kicks the buried jobs of every tube, per-tube --bound, and leaves delayed jobs alone', TEST_TIMEOUT, async () => {
      // A server of its own: --all-tubes would otherwise also kick the other tests' buried jobs.
      const own = await startBeanstalkd();
      try {
        const p = prefix('kick');
        const [a, b] = [`${p}-a`, `${p}-b`];
        await bury(own, await putJobs(own, a, 2));
        const [delayed] = await putJobs(own, a, 1, { delay: 3_600 });
        await bury(own, await putJobs(own, b, 1));
        await putJobs(own, b, 1);

        const bounded = await run(['kick', '--all-tubes', '--bound', '1', '--url', own.url]);
        assert.equal(bounded.code, 0, bounded.stderr);
        assert.equal(
          bounded.stdout,
          `kicked 1 buried job in tube ${a} (1 still buried)\nkicked 1 buried job in tube ${b} (0 still buried)\ntotal: kicked 2 buried jobs in 2 tubes\n`,
        );

        const rest = await run(['kick', '--all-tubes', '--json', '--url', own.url]);
        assert.equal(rest.code, 0, rest.stderr);
        assert.deepEqual(JSON.parse(rest.stdout), { kicked: 1, tubes: [{ tube: a, kicked: 1, stillBuried: 0 }] });

        const tubeA = await rawStatsTube(own.url, a);
        const tubeB = await rawStatsTube(own.url, b);
        assert.deepEqual([tubeA?.['current-jobs-ready'], tubeA?.['current-jobs-buried'], tubeA?.['current-jobs-delayed']], ['2', '0', '1']);
        assert.deepEqual([tubeB?.['current-jobs-ready'], tubeB?.['current-jobs-buried']], ['2', '0']);
        assert.equal((await rawStatsJob(own.url, delayed as string))?.state, 'delayed');

        const [none, noneJson] = await Promise.all([
          run(['kick', '--all-tubes', '--url', own.url]),
          run(['kick', '--all-tubes', '--json', '--url', own.url]),
        ]);
        assert.equal(none.stdout, 'no buried jobs in any tube\n');
        assert.deepEqual(JSON.parse(noneJson.stdout), { kicked: 0, tubes: [] });
        assert.equal((await rawStatsJob(own.url, delayed as string))?.state, 'delayed', 'still delayed');
      } finally {
        await own.stop();
      }
    });

    it('--tube --json: one entry, matching the server', TEST_TIMEOUT, async () => {
      const t = prefix('kick');
      await bury(server, await putJobs(server, t, 2));
      const one = await run(['kick', '--tube', t, '--bound', '1', '--json', '--url', server.url]);
      assert.equal(one.code, 0, one.stderr);
      assert.deepEqual(JSON.parse(one.stdout), { kicked: 1, tubes: [{ tube: t, kicked: 1, stillBuried: 1 }] });
      const tube = await rawStatsTube(server.url, t);
      assert.deepEqual([tube?.['current-jobs-ready'], tube?.['current-jobs-buried']], ['1', '1']);

      const empty = prefix('kick');
      const none = await run(['kick', '--tube', empty, '--json', '--url', server.url]);
      assert.deepEqual(JSON.parse(none.stdout), { kicked: 0, tubes: [{ tube: empty, kicked: 0, stillBuried: 0 }] });
    });

    it('exits 2 with both or neither of --tube and --all-tubes, and kicks nothing', TEST_TIMEOUT, async () => {
      const t = prefix('kick');
      const [id] = await putJobs(server, t, 1);
      await bury(server, [id as string]);
      const [both, neither] = await Promise.all([
        run(['kick', '--tube', t, '--all-tubes', '--url', server.url]),
        run(['kick', '--json', '--url', server.url]),
      ]);
      for (const result of [both, neither]) {
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stderr, 'bsworker: error: give exactly one of --tube <tube> or --all-tubes\n');
        assert.equal(result.stdout, '');
      }
      assert.equal((await rawStatsJob(server.url, id as string))?.state, 'buried');
    });
  });

  describe('--json of kick-job and buried', () => {
    it('kick-job --json says where the job came from', TEST_TIMEOUT, async () => {
      const t = prefix('json');
      const [buried] = await putJobs(server, t, 1);
      await bury(server, [buried as string]);
      const [delayed] = await putJobs(server, t, 1, { delay: 3_600 });

      const results = await Promise.all([buried, delayed].map((id) => run(['kick-job', id as string, '--json', '--url', server.url])));
      assert.deepEqual(
        results.map((result) => JSON.parse(result.stdout)),
        [
          { id: buried, kicked: true, from: 'buried', tube: t },
          { id: delayed, kicked: true, from: 'delayed', tube: t },
        ],
      );
      for (const id of [buried, delayed]) assert.equal((await rawStatsJob(server.url, id as string))?.state, 'ready');
    });

    it('buried --json: the count and the first job, decoded, raw when not an envelope, null when none', TEST_TIMEOUT, async () => {
      const t = prefix('json');
      const id = await rawPut(server.url, t, envelope('send', t, { to: 'ann@example.com' }));
      // Bury, kick, bury again, so that the kick count is a real one.
      await bury(server, [id]);
      assert.deepEqual(await rawSession(server.port, [`kick-job ${id}`]), ['KICKED']);
      await bury(server, [id]);
      const [newer] = await putJobs(server, t, 1);
      await bury(server, [newer as string]);

      const result = await run(['buried', '--tube', t, '--json', '--url', server.url]);
      assert.equal(result.code, 0, result.stderr);
      // Since issue 9 the document also lists every buried job (a page of them, newest first); the
      // fields it had before are unchanged.
      const { jobs, scanned, nextCursor, exhausted, stoppedBy, ...report } = JSON.parse(result.stdout) as {
        first: { ageSeconds: number };
        jobs: { id: string }[];
        scanned: number;
        nextCursor: string | null;
        exhausted: boolean;
        stoppedBy: string;
      };
      assert.deepEqual(
        jobs.map((job) => job.id),
        [newer, id],
      );
      assert.deepEqual([nextCursor, exhausted, stoppedBy], [null, true, 'end']);
      assert.ok(scanned >= Number(newer), `every id from ${newer} down was scanned (${scanned})`);
      const stats = await rawStatsJob(server.url, id);
      assert.ok(Math.abs(report.first.ageSeconds - Number(stats?.age)) <= 1, `age ${report.first.ageSeconds} vs ${stats?.age}`);
      assert.deepEqual(report, {
        tube: t,
        buried: Number((await rawStatsTube(server.url, t))?.['current-jobs-buried']),
        first: {
          id,
          func_name: 'send',
          kwargs: { to: 'ann@example.com' },
          kicks: Number(stats?.kicks),
          ageSeconds: report.first.ageSeconds,
        },
      });
      assert.equal(stats?.kicks, '1');

      const odd = prefix('json');
      const oddId = await rawPut(server.url, odd, 'plain text, <not> JSON');
      await bury(server, [oddId]);
      const {
        jobs: oddJobs,
        scanned: _s,
        nextCursor: _n,
        exhausted: _e,
        stoppedBy: _b,
        ...raw
      } = JSON.parse((await run(['buried', '--tube', odd, '--json', '--url', server.url])).stdout) as Record<string, unknown>;
      assert.equal((oddJobs as { raw: string }[])[0]?.raw, 'plain text, <not> JSON');
      assert.deepEqual(raw, {
        tube: odd,
        buried: 1,
        first: {
          id: oddId,
          func_name: null,
          kwargs: null,
          kicks: 0,
          ageSeconds: (raw.first as { ageSeconds: number }).ageSeconds,
          raw: 'plain text, <not> JSON',
          decodeError: (raw.first as { decodeError: string }).decodeError,
        },
      });
      assert.equal(typeof (raw.first as { decodeError: unknown }).decodeError, 'string');

      const empty = prefix('json');
      const none = await run(['buried', '--tube', empty, '--json', '--url', server.url]);
      assert.deepEqual(JSON.parse(none.stdout), {
        tube: empty,
        buried: 0,
        first: null,
        jobs: [],
        scanned: 0,
        nextCursor: null,
        exhausted: true,
        stoppedBy: 'end',
      });
    });
  });
});
