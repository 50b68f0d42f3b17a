// Log lines stay short: errors, stacks, causes and messages are capped, and a lost connection is one line.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { ConnectionError } from '../../src/beanstalk/errors.js';
import { capText, createLogger, LOG_LIMITS, type Logger } from '../../src/logging/logger.js';

/** A JSON logger writing to memory, and the lines it wrote, parsed. */
function capture(): { logger: Logger; lines: () => string[]; parsed: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  const lines = (): string[] => chunks.join('').split('\n').filter(Boolean);
  return {
    logger: createLogger({ destination, pretty: false }),
    lines,
    parsed: () => lines().map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

type SerializedErr = { type: string; message: string; stack?: string; code?: string; cause?: unknown; [key: string]: unknown };

/** An error thrown `frames` calls deep, so its stack has at least that many frames. */
function deepError(frames: number, message: string): Error {
  const previous = Error.stackTraceLimit;
  Error.stackTraceLimit = frames + 10;
  try {
    const recurse = (left: number): Error => (left === 0 ? new Error(message) : recurse(left - 1));
    return recurse(frames);
  } finally {
    Error.stackTraceLimit = previous;
  }
}

describe('log caps', () => {
  it('keeps an `error` or `err` field that is a plain message as text, capped', () => {
    const { logger, parsed } = capture();
    logger.warn({ error: 'connection refused', err: 'x'.repeat(5_000) }, 'retrying');
    const [line] = parsed();
    assert.equal(line?.error, 'connection refused');
    assert.equal(typeof line?.err, 'string');
    assert.ok(String(line?.err).length < 2_100);
  });

  it('caps a 1 MB error message, in the message and in the stack header, saying how much was cut', () => {
    const { logger, lines, parsed } = capture();
    logger.error({ err: new Error('x'.repeat(1_000_000)) }, 'job failed');
    const [line] = lines();
    assert.ok((line?.length ?? 0) < 20_000, `the line has ${line?.length} chars`);
    const err = parsed()[0]?.err as SerializedErr;
    assert.equal(err.type, 'Error');
    assert.ok(err.message.startsWith('x'.repeat(LOG_LIMITS.errorMessageChars)));
    assert.match(err.message, /… \[998000 more chars cut\]$/);
    assert.ok(err.stack?.startsWith(`Error: ${err.message}\n    at `), err.stack?.slice(0, 100));
  });

  it('keeps 20 frames of a deep stack, with a marker of the frames cut', () => {
    const { logger, parsed } = capture();
    logger.error({ err: deepError(60, 'deep') }, 'failed');
    const stack = (parsed()[0]?.err as SerializedErr | undefined)?.stack ?? '';
    const frames = stack.split('\n').filter((line) => line.startsWith('    at '));
    assert.equal(frames.length, LOG_LIMITS.stackFrames);
    assert.match(stack, /\n {4}\.\.\. \d+ more frames cut$/);
    assert.ok(stack.length <= LOG_LIMITS.stackChars + 40);
  });

  it('keeps name, code and a few levels of cause, each capped', () => {
    const { logger, parsed } = capture();
    let error: Error = Object.assign(new Error('level 0'), { code: 'E_ZERO' });
    for (let level = 1; level <= 6; level++) error = new TypeError(`level ${level} ${'y'.repeat(5_000)}`, { cause: error });
    Object.assign(error, { code: 'E_TOP', retryable: true });
    logger.error({ error }, 'failed');
    const top = parsed()[0]?.error as SerializedErr;
    assert.deepEqual([top.type, top.code, top.retryable], ['TypeError', 'E_TOP', true]);
    let cause = top.cause as SerializedErr | string;
    let depth = 0;
    while (typeof cause === 'object') {
      assert.ok(cause.message.length < LOG_LIMITS.errorMessageChars + 40);
      cause = cause.cause as SerializedErr | string;
      depth += 1;
    }
    assert.equal(depth, LOG_LIMITS.causeDepth);
    assert.equal(cause, '[cause depth limit]');
  });

  it('caps msg', () => {
    const { logger, parsed } = capture();
    logger.warn(`job buried: ${'z'.repeat(100_000)}`);
    const msg = parsed()[0]?.msg as string;
    assert.ok(msg.length < LOG_LIMITS.messageChars + 40);
    assert.match(msg, /more chars cut\]$/);
  });

  it('cuts every string of a line that is too long, keeping it one valid JSON line', () => {
    const { logger, lines, parsed } = capture();
    logger.info({ document: 'd'.repeat(200_000), other: 'o'.repeat(100) }, 'a task logged a whole document');
    assert.equal(lines().length, 1);
    const [entry] = parsed();
    assert.ok((lines()[0]?.length ?? 0) < 10_000);
    assert.match(entry?.document as string, /more chars cut\]$/);
    assert.equal(entry?.other, 'o'.repeat(100));
    assert.equal(entry?.msg, 'a task logged a whole document');
  });

  it('logs a ConnectionError as name, message and code, with no stack', () => {
    const { logger, lines, parsed } = capture();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    logger.warn(
      {
        err: new ConnectionError('127.0.0.1:1', 'could not connect to beanstalkd at 127.0.0.1:1: connect ECONNREFUSED', { cause: refused }),
      },
      'reconnect failed',
    );
    const err = parsed()[0]?.err as SerializedErr;
    assert.deepEqual([err.type, err.code, err.stack], ['ConnectionError', 'CONNECTION', undefined]);
    assert.equal((err.cause as SerializedErr).stack, undefined, 'nor its cause');
    assert.equal((err.cause as SerializedErr).code, 'ECONNREFUSED');
    assert.doesNotMatch(lines()[0] ?? '', /\s{4}at /);
  });
});

describe('capText', () => {
  it('keeps short text and cuts long text with a marker, never inside a surrogate pair', () => {
    assert.equal(capText('short', 10), 'short');
    assert.equal(capText('abcdef', 3), 'abc… [3 more chars cut]');
    assert.equal(capText('ab😀cd', 3), 'ab… [4 more chars cut]');
  });
});
