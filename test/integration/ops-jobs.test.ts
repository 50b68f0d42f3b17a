// `bsworker peek`, `put` and `delete`: the real binary against a real beanstalkd. Every output is checked
// against the server's own view (stats-job, stats-tube, the body as `peek` returns it on a raw socket).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BeanstalkdServer, freePort, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, envelope, prefix, run } from '../helpers/cli.js';

const TEST_TIMEOUT = { timeout: 20_000 };

/** True if `text` holds ESC or the 8-bit CSI, which a terminal would act on. */
const hasEscape = (text: string): boolean => text.includes('\u001b') || text.includes('\u009b');

/**
 * One raw socket, one command at a time. Burying needs it: `bury` works only on the connection that
 * reserved the job, and a reservation lasts only as long as its socket (see {@link holdReserved}).
 */
class RawSession {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiting: ((line: string) => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#deliver();
    });
  }

  static open(port: number): Promise<RawSession> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => resolve(new RawSession(socket)));
    });
  }

  /** Sends `command` (CRLF added) and resolves with the first line of the reply. */
  send(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(command.slice(0, 40))}`)), 5_000);
      this.#waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#socket.write(`${command}\r\n`);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #deliver(): void {
    const lineEnd = this.#buffer.indexOf('\r\n');
    if (lineEnd < 0 || !this.#waiting) return;
    const line = this.#buffer.subarray(0, lineEnd).toString('utf8');
    // RESERVED/FOUND/OK carry a body whose size is the last word; wait for all of it.
    const size = /^(?:RESERVED|FOUND|OK) .*?(\d+)$/.exec(line)?.[1];
    const end = lineEnd + 2 + (size === undefined ? 0 : Number(size) + 2);
    if (this.#buffer.length < end) return;
    this.#buffer = this.#buffer.subarray(end);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting(line);
  }
}

describe('bsworker peek, put and delete', () => {
  let server: BeanstalkdServer;
  let temp: string;
  const url = (): string => server.url;

  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-ops-jobs-'));
  });

  after(async () => {
    await server?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  /** Reserves and buries ready jobs on one socket, and checks the server agrees. */
  async function bury(ids: readonly string[]): Promise<void> {
    const session = await RawSession.open(server.port);
    try {
      for (const id of ids) {
        assert.match(await session.send(`reserve-job ${id}`), new RegExp(`^RESERVED ${id} `));
        assert.equal(await session.send(`bury ${id} 1024`), 'BURIED');
      }
    } finally {
      session.close();
    }
  }

  /** Puts `count` envelope jobs into `tube` on one socket; resolves with their ids, oldest first. */
  async function putMany(tube: string, count: number): Promise<string[]> {
    const session = await RawSession.open(server.port);
    try {
      assert.equal(await session.send(`use ${tube}`), `USING ${tube}`);
      const ids: string[] = [];
      for (let n = 0; n < count; n += 1) {
        const body = envelope('cleanup', tube, { n });
        const reply = await session.send(`put 1024 0 60 ${Buffer.byteLength(body)}\r\n${body}`);
        ids.push(/^INSERTED (\d+)$/.exec(reply)?.[1] ?? assert.fail(reply));
      }
      return ids;
    } finally {
      session.close();
    }
  }

  /** The body the server holds for a job, read on a raw socket. */
  async function bodyOf(id: string): Promise<string> {
    const reply = await rawCommand(url(), `peek ${id}\r\n`);
    assert.match(reply, new RegExp(`^FOUND ${id} \\d+\r\n`));
    return reply.slice(reply.indexOf('\r\n') + 2, -2);
  }

  /** Checks an exit 2 with one `bsworker: error:` line (commander's own errors add a hint line). */
  function assertUsage(result: { code: number | null; stderr: string }, pattern: RegExp): void {
    assert.equal(result.code, 2, result.stderr);
    const [first = ''] = result.stderr.split('\n');
    assert.match(first, pattern);
    assert.match(first, /^bsworker: error: /);
  }

  describe('peek', () => {
    it('peek ID prints state, counters and envelope; --json matches stats-job', TEST_TIMEOUT, async () => {
      const t = prefix('peek');
      const id = await rawPut(url(), t, envelope('send_email', t, { to: 'ann@example.com', n: 2 }), { priority: 5, ttr: 30 });
      // --url before the subcommand is honoured too.
      const [text, json] = await Promise.all([run(['--url', url(), 'peek', id]), run(['peek', id, '--json', '--url', url()])]);

      assert.equal(text.code, 0, text.stderr);
      for (const line of [
        `id: +${id}`,
        `tube: +${t}`,
        'state: +ready',
        'priority: +5',
        'ttr: +30s',
        'reserves: +0',
        'func_name: +"send_email"',
      ]) {
        assert.match(text.stdout, new RegExp(`^${line}$`, 'm'));
      }
      assert.match(text.stdout, /^kwargs: +\{"to":"ann@example.com","n":2\}$/m);
      assert.doesNotMatch(text.stdout, /body tube|raw body|meta/);

      assert.equal(json.code, 0, json.stderr);
      const doc = JSON.parse(json.stdout) as Record<string, unknown>;
      const stats = await rawStatsJob(url(), id);
      assert.ok(stats);
      assert.ok(Math.abs(Number(doc.ageSeconds) - Number(stats.age)) <= 1);
      assert.deepEqual(
        { ...doc, ageSeconds: 0 },
        {
          id,
          tube: stats.tube,
          state: stats.state,
          priority: Number(stats.pri),
          ageSeconds: 0,
          delaySeconds: Number(stats.delay),
          ttrSeconds: Number(stats.ttr),
          timeLeftSeconds: Number(stats['time-left']),
          reserves: Number(stats.reserves),
          timeouts: Number(stats.timeouts),
          releases: Number(stats.releases),
          buries: Number(stats.buries),
          kicks: Number(stats.kicks),
          envelope: { func_name: 'send_email', tube: t, kwargs: { to: 'ann@example.com', n: 2 } },
          raw: null,
          decodeError: null,
        },
      );
    });

    it('peek --tube with --ready, --delayed or --buried shows the job in that state', TEST_TIMEOUT, async () => {
      const t = prefix('peek');
      const ready = await rawPut(url(), t, envelope('a', t, {}));
      const delayed = await rawPut(url(), t, envelope('b', t, {}), { delay: 3_600 });
      const buried = await rawPut(url(), t, envelope('c', t, {}));
      await bury([buried]);

      const results = await Promise.all(
        (['ready', 'delayed', 'buried'] as const).map((state) => run(['peek', '--tube', t, `--${state}`, '--json', '--url', url()])),
      );
      const docs = results.map((result) => {
        assert.equal(result.code, 0, result.stderr);
        return JSON.parse(result.stdout) as { id: string; state: string; timeLeftSeconds: number; buries: number; envelope: unknown };
      });
      assert.deepEqual(
        docs.map((doc) => [doc.id, doc.state]),
        [
          [ready, 'ready'],
          [delayed, 'delayed'],
          [buried, 'buried'],
        ],
      );
      for (const doc of docs) assert.equal(doc.state, (await rawStatsJob(url(), doc.id))?.state);
      assert.ok((docs[1]?.timeLeftSeconds ?? 0) > 3_500, 'time-left of the delayed job');
      assert.equal(docs[2]?.buries, 1);
      assert.deepEqual(docs[2]?.envelope, { func_name: 'c', tube: t, kwargs: {} });

      const text = await run(['peek', '--tube', t, '--buried', '--url', url()]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^id: +${buried}\n`));
      assert.match(text.stdout, /^state: +buried$/m);
      assert.match(text.stdout, /^delay: +0s$/m);
    });

    it('shows a body that is not an envelope raw, escaped and marked; a dead letter with its meta', TEST_TIMEOUT, async () => {
      const t = prefix('peek');
      // Escape sequences (7-bit and the 8-bit CSI \u009b) must reach the terminal as text, not as commands.
      const hostile = 'plain \u001b[31mred\u001b[0m \u009b2J text';
      const rawId = await rawPut(url(), t, hostile);
      const deadLetter = {
        func_name: 'send_email',
        tube: 'emails',
        kwargs: { to: 'ann@example.com' },
        meta: { dead_letter: { error: 'SMTP 550', name: 'Error', attempts: 3, kicks: 2, tube: 'emails', job_id: '17' } },
      };
      const deadId = await rawPut(url(), t, JSON.stringify(deadLetter));
      const [rawText, rawJson, deadText, deadJson] = await Promise.all([
        run(['peek', rawId, '--url', url()]),
        run(['peek', rawId, '--json', '--url', url()]),
        run(['peek', deadId, '--url', url()]),
        run(['peek', deadId, '--json', '--url', url()]),
      ]);

      assert.equal(rawText.code, 0, rawText.stderr);
      assert.ok(!hasEscape(rawText.stdout), 'no escape character reaches the terminal');
      assert.match(rawText.stdout, /^raw body: +"plain \\u001b\[31mred\\u001b\[0m \\u009b2J text"$/m);
      assert.match(rawText.stdout, /^note: +not a bsworker job: the body is not JSON/m);
      assert.doesNotMatch(rawText.stdout, /func_name/);
      assert.equal(rawJson.code, 0, rawJson.stderr);
      assert.ok(!hasEscape(rawJson.stdout));
      const rawDoc = JSON.parse(rawJson.stdout) as { envelope: unknown; raw: string; decodeError: string };
      assert.equal(rawDoc.envelope, null);
      assert.equal(rawDoc.raw, hostile);
      assert.match(rawDoc.decodeError, /^the body is not JSON/);

      assert.equal(deadText.code, 0, deadText.stderr);
      assert.match(deadText.stdout, /^func_name: +"send_email"$/m);
      assert.match(deadText.stdout, /^body tube: +"emails"$/m, 'the tube in the body differs from the job tube');
      // Longer than a line: pretty-printed below its label.
      assert.match(deadText.stdout, /^meta:\n {2}\{\n {4}"dead_letter": \{\n {6}"error": "SMTP 550",$/m);
      assert.equal(deadJson.code, 0, deadJson.stderr);
      const deadDoc = JSON.parse(deadJson.stdout) as { tube: string; envelope: unknown; raw: unknown; decodeError: unknown };
      assert.equal(deadDoc.tube, t);
      assert.deepEqual(deadDoc.envelope, deadLetter);
      assert.equal(deadDoc.raw, null);
      assert.equal(deadDoc.decodeError, null);
    });

    it('bad input exits 2 with one line: unknown id, empty state, conflicting or missing arguments, bad tube', TEST_TIMEOUT, async () => {
      const t = prefix('peek');
      const cases: [string[], RegExp][] = [
        [['peek', '99999999'], /^bsworker: error: job 99999999 does not exist$/],
        [['peek', '--tube', t, '--buried'], new RegExp(`^bsworker: error: no buried job in tube ${t}$`)],
        [['peek', '1', '--tube', t, '--ready'], /not both/],
        [['peek'], /give a job id/],
        [['peek', '--tube', t], /give one of --ready, --delayed or --buried/],
        [['peek', '--delayed'], /--delayed needs --tube/],
        [['peek', '--tube', t, '--ready', '--buried'], /give only one of/],
        [['peek', '--tube', 'bad tube', '--ready'], /valid tube name/],
        [['peek', 'abc'], /job id/],
      ];
      const results = await Promise.all(cases.map(([args]) => run([...args, '--url', url()])));
      for (const [i, result] of results.entries()) assertUsage(result, cases[i]?.[1] ?? /./);
      assert.equal(results[0]?.stderr.split('\n').length, 2, 'exactly one line');
    });
  });

  describe('put', () => {
    it('puts the exact envelope into the tube with the given priority, delay and ttr', TEST_TIMEOUT, async () => {
      const t = prefix('put');
      const [text, json] = await Promise.all([
        run([
          'put',
          t,
          'send_email',
          '--kwargs',
          '{"to": "ann@example.com", "n": 2}',
          '--priority',
          '10',
          '--delay',
          '120',
          '--ttr',
          '30',
          '--url',
          url(),
        ]),
        run(['put', t, 'noop', '--json', '--url', url()]),
      ]);

      assert.equal(text.code, 0, text.stderr);
      const id = /^put job (\d+) into tube /.exec(text.stdout)?.[1] ?? assert.fail(text.stdout);
      assert.equal(text.stdout, `put job ${id} into tube ${t}: func_name "send_email", priority 10, delay 120s, ttr 30s\n`);
      const stats = await rawStatsJob(url(), id);
      assert.deepEqual([stats?.tube, stats?.state, stats?.pri, stats?.delay, stats?.ttr], [t, 'delayed', '10', '120', '30']);
      assert.equal(await bodyOf(id), JSON.stringify({ func_name: 'send_email', tube: t, kwargs: { to: 'ann@example.com', n: 2 } }));

      // The defaults are the library's: priority 1024, no delay, ttr 60, kwargs {}.
      assert.equal(json.code, 0, json.stderr);
      const doc = JSON.parse(json.stdout) as { id: string };
      assert.deepEqual(doc, { id: doc.id, tube: t, func_name: 'noop' });
      const defaults = await rawStatsJob(url(), doc.id);
      assert.deepEqual([defaults?.state, defaults?.pri, defaults?.delay, defaults?.ttr], ['ready', '1024', '0', '60']);
      assert.equal(await bodyOf(doc.id), JSON.stringify({ func_name: 'noop', tube: t, kwargs: {} }));
    });

    it('reads kwargs from --kwargs-file and from stdin with -', TEST_TIMEOUT, async () => {
      const t = prefix('put');
      const file = join(temp, `${t}.json`);
      await writeFile(file, '\uFEFF{\n  "report": "daily",\n  "pages": [1, 2]\n}\n');
      const fromStdin = new Cli(['put', t, 'from_stdin', '-', '--json', '--url', url()]);
      fromStdin.child.stdin.end('{"n": 3, "name": "Zoë"}\n');
      const [fromFile, stdinExit] = await Promise.all([
        run(['put', t, 'from_file', '--kwargs-file', file, '--json', '--url', url()]),
        fromStdin.waitForExit(),
      ]);

      assert.equal(fromFile.code, 0, fromFile.stderr);
      const fileId = (JSON.parse(fromFile.stdout) as { id: string }).id;
      assert.equal(await bodyOf(fileId), JSON.stringify({ func_name: 'from_file', tube: t, kwargs: { report: 'daily', pages: [1, 2] } }));
      assert.equal(stdinExit.code, 0, fromStdin.stderr);
      const stdinId = (JSON.parse(fromStdin.stdout) as { id: string }).id;
      assert.equal(await bodyOf(stdinId), JSON.stringify({ func_name: 'from_stdin', tube: t, kwargs: { n: 3, name: 'Zoë' } }));
    });

    it('bad input exits 2 with one line and puts nothing: malformed kwargs say where', TEST_TIMEOUT, async () => {
      const t = prefix('put');
      const file = join(temp, `${t}.json`);
      await writeFile(file, '{\n  "a": 1\n  "b": 2\n}\n');
      const cases: [string[], RegExp][] = [
        [
          ['--kwargs', '{"to": "ann", }'],
          /^bsworker: error: --kwargs is not valid JSON: at line 1, column 15: JSON allows no comma before "}"$/,
        ],
        // Node 20's JSON.parse gives no position for this one.
        [['--kwargs', '{"a": tru}'], /--kwargs is not valid JSON: at line 1, column 7: expected a value, got 'tru'$/],
        [['--kwargs-file', file], /--kwargs-file ".*" is not valid JSON: at line 3, column 3: expected ',' or '}' after a property value/],
        [['--kwargs', '[1, 2]'], /--kwargs must be a JSON object .*got an array$/],
        [['--kwargs', '{}', '-'], /give the kwargs once/],
        [['--priority', '4294967296'], /--priority.*from 0 to 4294967295/],
        [['--priority', '-1'], /--priority.*from 0 to 4294967295/],
        [['--ttr', '1'], /--ttr.*at least 2 seconds/],
        [['--delay', 'soon'], /--delay.*from 0 to 4294967295/],
        [['--kwargs', JSON.stringify({ blob: 'x'.repeat(70_000) })], /at most 65535 bytes \(the server's max-job-size\)/],
      ];
      const results = await Promise.all(cases.map(([args]) => run(['put', t, 'send_email', ...args, '--url', url()])));
      for (const [i, result] of results.entries()) assertUsage(result, cases[i]?.[1] ?? /./);
      assertUsage(await run(['put', 'bad tube', 'send_email', '--url', url()]), /valid tube name/);
      assert.equal(await rawStatsTube(url(), t), null, 'no job was put');
    });
  });

  describe('delete', () => {
    it('delete ID deletes a ready or buried job; a reserved job or an unknown id exits 2', TEST_TIMEOUT, async () => {
      const t = prefix('delete');
      const [ready, buried, reserved] = await putMany(t, 3);
      assert.ok(ready && buried && reserved);
      await bury([buried]);
      // A reservation lasts as long as its socket: hold it open while delete runs.
      const holder = await RawSession.open(server.port);
      try {
        assert.match(await holder.send(`reserve-job ${reserved}`), /^RESERVED /);
        const [one, two, held, unknown] = await Promise.all([
          run(['delete', ready, '--url', url()]),
          run(['delete', buried, '--json', '--url', url()]),
          run(['delete', reserved, '--url', url()]),
          run(['delete', '99999999', '--url', url()]),
        ]);
        assert.equal(one.code, 0, one.stderr);
        assert.equal(one.stdout, `deleted job ${ready} (it was ready in tube ${t})\n`);
        assert.equal(two.code, 0, two.stderr);
        assert.deepEqual(JSON.parse(two.stdout), { deleted: 1, ids: [buried] });
        assertUsage(held, new RegExp(`^bsworker: error: job ${reserved} is reserved by a worker; only that worker can delete it`));
        assertUsage(unknown, /^bsworker: error: job 99999999 does not exist$/);
        assert.equal(await rawStatsJob(url(), ready), null);
        assert.equal(await rawStatsJob(url(), buried), null);
        assert.equal((await rawStatsJob(url(), reserved))?.state, 'reserved');
      } finally {
        holder.close();
      }
    });

    it('delete --tube --buried --yes deletes oldest first up to --limit, with one summary line off a terminal', TEST_TIMEOUT, async () => {
      const t = prefix('delete');
      // More than 100 jobs: on a terminal this would show a progress bar; off one, only the summary.
      const ids = await putMany(t, 151);
      const buried = ids.slice(0, 150);
      await bury(buried);

      const limited = await run(['delete', '--tube', t, '--buried', '--limit', '30', '--yes', '--url', url()]);
      assert.equal(limited.code, 0, limited.stderr);
      assert.equal(limited.stdout, `deleted 30 buried jobs from tube ${t} (120 still buried)\n`);
      assert.equal(limited.stderr, '');
      let tube = await rawStatsTube(url(), t);
      assert.deepEqual([tube?.['current-jobs-buried'], tube?.['current-jobs-ready']], ['120', '1']);
      assert.equal(await rawStatsJob(url(), buried[29] as string), null, 'the oldest went first');
      assert.equal((await rawStatsJob(url(), buried[30] as string))?.state, 'buried');

      const rest = await run(['delete', '--tube', t, '--buried', '--yes', '--json', '--url', url()]);
      assert.equal(rest.code, 0, rest.stderr);
      assert.deepEqual(JSON.parse(rest.stdout), { deleted: 120, ids: buried.slice(30) });
      tube = await rawStatsTube(url(), t);
      assert.deepEqual([tube?.['current-jobs-buried'], tube?.['current-jobs-ready']], ['0', '1'], 'the ready job is left alone');

      const none = await run(['delete', '--tube', t, '--buried', '--yes', '--url', url()]);
      assert.equal(none.code, 0, none.stderr);
      assert.equal(none.stdout, `no buried jobs in tube ${t}\n`);
    });

    it('bulk deletion without --yes and stdin not a terminal is refused, and bad input exits 2', TEST_TIMEOUT, async () => {
      const t = prefix('delete');
      await bury(await putMany(t, 2));
      const cases: [string[], RegExp][] = [
        [
          ['delete', '--tube', t, '--buried'],
          new RegExp(
            `^bsworker: error: refusing to delete 2 buried jobs from tube ${t} without confirmation: add --yes to delete without asking$`,
          ),
        ],
        [['delete'], /give a job id/],
        [['delete', '--tube', t], /give --buried/],
        [['delete', '--buried', '--yes'], /--buried needs --tube/],
        [['delete', '5', '--tube', t, '--buried'], /not both/],
        [['delete', '--tube', t, '--buried', '--limit', '0', '--yes'], /--limit/],
        [['delete', '--tube', 'bad tube', '--buried', '--yes'], /valid tube name/],
      ];
      // Spawned with stdin a pipe, not a terminal.
      const results = await Promise.all(cases.map(([args]) => run([...args, '--url', url()])));
      for (const [i, result] of results.entries()) assertUsage(result, cases[i]?.[1] ?? /./);
      assert.equal((await rawStatsTube(url(), t))?.['current-jobs-buried'], '2', 'nothing deleted');
    });
  });

  it('an unreachable server exits 2 with one line naming the address', TEST_TIMEOUT, async () => {
    const nowhere = `127.0.0.1:${await freePort()}`;
    const results = await Promise.all([
      run(['peek', '1', '--url', nowhere]),
      run(['put', 'emails', 'send_email', '--url', nowhere]),
      run(['delete', '1', '--url', nowhere]),
      run(['delete', '--tube', 'emails', '--buried', '--yes'], { BEANSTALKD_URL: nowhere }),
    ]);
    for (const result of results) {
      assertUsage(result, new RegExp(`^bsworker: error: could not connect to beanstalkd at ${nowhere}: connection refused`));
      assert.equal(result.stderr.split('\n').length, 2, 'exactly one line');
    }
  });
});
