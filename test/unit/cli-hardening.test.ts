/**
 * The CLI's small pure parts, without a server: how errors are printed, how kwargs input is bounded,
 * how the worker command maps its flags onto Worker options, and the wait for the server at start
 * (with a fake connect and a logger that records).
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { Beanstalk } from '../../src/beanstalk/types.js';
import { formatError } from '../../src/cli/errors.js';
import { decodeUtf8, readAtMost } from '../../src/cli/ops/put.js';
import { parseKeys, parseRedactEnv } from '../../src/cli/parse.js';
import { usageErrorLine } from '../../src/cli/program.js';
import type { RunWorkerOptions } from '../../src/cli/run-worker.js';
import { ServerWaitTimeoutError, waitForServer } from '../../src/cli/wait-for-server.js';
import { workerOptionsFrom } from '../../src/cli/worker-flags.js';

const silent = pino({ level: 'silent' });

/** A pino logger whose lines are kept, parsed. */
function recordingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('error lines', () => {
  it('escape control and bidi characters, so a value from the shell cannot move the cursor or reorder text', () => {
    const line = formatError(new Error("invalid tube 'x\r\nput 0 0 1 1' and 'a\x1b[31m' and 'b\u202Ec'"));
    assert.equal(line, "bsworker: error: invalid tube 'x\\u000d\\u000aput 0 0 1 1' and 'a\\u001b[31m' and 'b\\u202ec'");
  });

  it("commander's messages get the bsworker prefix, one line, escaped", () => {
    assert.equal(usageErrorLine("error: unknown option '--x\x1b]0;t\x07'\n"), "bsworker: error: unknown option '--x\\u001b]0;t\\u0007'\n");
    assert.equal(
      usageErrorLine("error: required option '-t, --tubes <tubes>' not specified\n"),
      "bsworker: error: required option '-t, --tubes <tubes>' not specified\n",
    );
  });
});

describe('kwargs input', () => {
  it('readAtMost stops reading an endless stream once it passes the limit', async () => {
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled += 1;
        this.push(Buffer.alloc(16_384, 0x20));
      },
    });
    assert.equal(await readAtMost(endless, 65_535), undefined);
    assert.ok(pulled < 10, `read ${pulled} chunks`);
    endless.destroy();
  });

  it('readAtMost returns the whole input when it fits, even exactly at the limit', async () => {
    assert.deepEqual(await readAtMost(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), 7), Buffer.from('{"a":1}'));
  });

  it('decodeUtf8 refuses invalid UTF-8 instead of turning it into U+FFFD', () => {
    assert.throws(() => decodeUtf8(Buffer.from([0x7b, 0xff, 0x7d]), 'stdin'), /stdin is not valid UTF-8/);
    assert.equal(decodeUtf8(Buffer.from('{"é":1}'), 'stdin'), '{"é":1}');
  });
});

describe('worker options from the command line', () => {
  const base: RunWorkerOptions = {
    tubes: ['emails'],
    jobs: './jobs',
    maxKicks: 3,
    graceMs: 1_000,
    logLevel: 'info',
    failureRecords: true,
    metricsHost: '127.0.0.1',
  };

  it('passes --redact to the Worker as `redact`', () => {
    assert.deepEqual(workerOptionsFrom({ ...base, redact: ['password', 'token'] }, silent).redact, ['password', 'token']);
    assert.equal(workerOptionsFrom(base, silent).redact, undefined);
    assert.equal(workerOptionsFrom({ ...base, failureRecords: false }, silent).failureRecords, false, '--no-failure-records');
    assert.equal(workerOptionsFrom(base, silent).failureRecords, true);
  });

  it('every process kicks (the kick lock keeps it one round per period), and --threads names the jobs directory', () => {
    assert.equal(workerOptionsFrom({ ...base, kickPeriod: 60 }, silent).kickPeriodSeconds, 60);
    assert.equal(workerOptionsFrom(base, silent).threads, undefined);
    const threads = workerOptionsFrom({ ...base, threads: 2 }, silent).threads;
    assert.equal(threads?.size, 2);
    assert.ok(threads?.jobsDir.endsWith('/jobs') && threads.jobsDir.startsWith('/'), 'an absolute jobs directory');
  });

  it('--redact keys and BSWORKER_REDACT: trimmed, de-duplicated; no key at all is an error for the flag, none for the variable', () => {
    assert.deepEqual(parseKeys(' password, token,password '), ['password', 'token']);
    assert.throws(() => parseKeys(' , '), /at least one kwargs key/);
    assert.deepEqual(parseRedactEnv('card,cvv'), ['card', 'cvv']);
    assert.equal(parseRedactEnv(''), undefined);
    assert.equal(parseRedactEnv(',,'), undefined);
  });
});

describe('waitForServer', () => {
  const address = { host: '127.0.0.1', port: 1 };
  const quitted: string[] = [];
  const probe = { quit: async () => void quitted.push('quit') } as unknown as Beanstalk;

  it('retries with backoff, one line per failed attempt (attempt, delay, address, message, no stack), then a line when connected', async () => {
    const { logger, lines } = recordingLogger();
    let calls = 0;
    const up = await waitForServer(address, {
      logger,
      minDelayMs: 1,
      maxDelayMs: 4,
      connect: async () => {
        calls += 1;
        if (calls < 4) throw new Error(`refused #${calls}`);
        return probe;
      },
    });
    assert.equal(up, true);
    assert.equal(calls, 4);
    const retries = lines.filter((line) => line.level === 40);
    assert.deepEqual(
      retries.map((line) => [line.attempt, line.error, line.server]),
      [
        [1, 'refused #1', '127.0.0.1:1'],
        [2, 'refused #2', '127.0.0.1:1'],
        [3, 'refused #3', '127.0.0.1:1'],
      ],
    );
    for (const line of retries) {
      assert.equal(typeof line.delayMs, 'number');
      assert.ok((line.delayMs as number) <= 4, 'capped');
      assert.ok(!JSON.stringify(line).includes('    at '), 'no stack');
      assert.match(String(line.msg), /attempt \d+\).*retrying in \d+ ms/);
    }
    assert.match(String(lines.at(-1)?.msg), /connected to beanstalkd at 127\.0\.0\.1:1 after 4 attempts/);
    assert.ok(quitted.length > 0, 'the probe connection is closed');
  });

  it('gives up with ServerWaitTimeoutError after timeoutSeconds', async () => {
    const started = Date.now();
    await assert.rejects(
      waitForServer(address, {
        logger: silent,
        timeoutSeconds: 0.2,
        minDelayMs: 20,
        maxDelayMs: 50,
        connect: async () => {
          throw new Error('refused');
        },
      }),
      (error: unknown) => error instanceof ServerWaitTimeoutError && /still unreachable after 0\.2s.*refused/.test(error.message),
    );
    assert.ok(Date.now() - started < 2_000);
  });

  it('resolves to false at once when its signal aborts during the backoff', async () => {
    const controller = new AbortController();
    const waiting = waitForServer(address, {
      logger: silent,
      signal: controller.signal,
      minDelayMs: 60_000,
      maxDelayMs: 60_000,
      connect: async () => {
        setImmediate(() => controller.abort());
        throw new Error('refused');
      },
    });
    assert.equal(await waiting, false);
  });
});
