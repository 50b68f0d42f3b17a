// Job data in log lines cannot forge a line or steer a terminal, through the real logger in both modes.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, escapeForTerminal, escapeJsonLine, type Logger } from '../../src/logging/logger.js';

/** A logger writing to memory, and what it wrote. */
function capture(pretty: boolean): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { logger: createLogger({ destination, pretty, level: 'trace' }), text: () => chunks.join('') };
}

/** The error V8 makes for a body that is not JSON: its message quotes the body, newline included. */
function parseError(body: string): Error {
  try {
    JSON.parse(body);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the body not to parse');
}

const HOSTILE = 'a\u202eb\u0085c\u009bd\u2028e\u2029f\u061cg\u200eh\u2066i\u007fj';
// Raw characters no line may hold: JSON mode escapes them; pretty mode also escapes C0.
const RAW_JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for raw control characters is the point
const RAW_TERMINAL_UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes are the logger's own, not job data
const SGR = /\u001b\[[0-9;]*m/g;

/** Logs everything a worker logs that comes from a job, each holding the hostile text. */
function logJobData(logger: Logger): void {
  const body = `x\nFORGED [12:00:00.000] INFO: fake\n${HOSTILE}`;
  const error = parseError(body);
  const job = logger.child({ tube: 'emails', jobId: '7', task: `task${HOSTILE}` });
  job.warn({ err: error, reason: 'not-json', body }, `job buried: the body is not JSON (${error.message})`);
  job.error({ error: new Error(`boom\nFORGED [12:00:00.000] INFO: fake ${HOSTILE}`), detail: { nested: [HOSTILE] } }, 'job failed');
  job.info({ [`key${HOSTILE}\n`]: 1 }, HOSTILE);
}

describe('log lines in JSON mode', () => {
  it('writes one valid JSON line per call, with no raw C1, bidi or line-separator character', () => {
    const { logger, text } = capture(false);
    logJobData(logger);
    const lines = text().split('\n');
    assert.equal(lines.pop(), '', 'the output ends with a newline');
    assert.equal(lines.length, 3, 'one line per call');
    for (const line of lines) {
      assert.doesNotMatch(line, RAW_JSON_UNSAFE);
      JSON.parse(line);
    }
    // Escaped, not removed: the line decodes to exactly what was logged.
    const [, failed, info] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(info?.msg, HOSTILE);
    assert.equal(info?.task, `task${HOSTILE}`);
    assert.deepEqual(failed?.detail, { nested: [HOSTILE] });
    assert.match(lines[0] ?? '', /\\u202e/);
  });

  it('escapes as \\uXXXX only what needs it, and leaves a clean line as it is', () => {
    assert.equal(escapeJsonLine('{"msg":"job completed"}\n'), '{"msg":"job completed"}\n');
    assert.equal(escapeJsonLine(JSON.stringify({ m: 'a\u2028b\u202e\u0085' })), '{"m":"a\\u2028b\\u202e\\u0085"}');
  });
});

describe('log lines in pretty mode', () => {
  it('lets no job data start a line and no raw control character reach the terminal', () => {
    const { logger, text } = capture(true);
    logJobData(logger);
    const output = text().replace(SGR, '');
    assert.doesNotMatch(output, RAW_TERMINAL_UNSAFE);
    const lines = output.split('\n');
    assert.equal(lines.pop(), '');
    // Every line is a log line's first line (`[time] LEVEL`) or indented under one: none is forged.
    for (const line of lines) assert.match(line, /^(\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR):|\s)/, JSON.stringify(line));
    assert.equal(lines.filter((line) => line.startsWith('[')).length, 3);
    assert.ok(!lines.some((line) => /^\s*FORGED/.test(line)), 'FORGED starts no line');
    // The hostile characters are shown, escaped.
    assert.match(output, /\\nFORGED \[12:00:00\.000\] INFO: fake\\n/);
    assert.match(output, /a\\u202eb\\u0085c\\u009bd\\u2028e/);
  });

  it('keeps an error stack on several lines, one per frame, with the message on the first', () => {
    const { logger, text } = capture(true);
    logger.error({ err: new Error('two\nlines') }, 'failed');
    const lines = text().replace(SGR, '').split('\n');
    const first = lines.findIndex((line) => line.includes('err: Error: two\\nlines'));
    assert.ok(first > 0, text());
    assert.match(lines[first + 1] ?? '', /^\s+at /);
  });

  it('shows every control, bidi and separator character as an escape', () => {
    assert.equal(escapeForTerminal('a\nb\tc\u0001\u007f\u009b\u202e\u2028'), 'a\\nb\\tc\\u0001\\u007f\\u009b\\u202e\\u2028');
    assert.equal(escapeForTerminal('plain text'), 'plain text');
  });
});
