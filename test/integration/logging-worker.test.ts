// A real worker on a real beanstalkd, logging through bsworker's logger: hostile job data cannot forge a
// log line on a terminal, and a refused connection is logged as one short line.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { JobQueue, Worker } from '../../src/index.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import { type BeanstalkdServer, freePort, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';

const tube = (): string => `log-${randomUUID().slice(0, 8)}`;
const FORGED = '\nFORGED [12:00:00.000] INFO: all is well\n';
// biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes are the logger's own, not job data
const SGR = /\u001b\[[0-9;]*m/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for raw control characters is the point
const RAW_UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function capture(pretty: boolean): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { logger: createLogger({ destination, pretty }), text: () => chunks.join('') };
}

describe('logging from a real worker', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  const workers: Worker[] = [];

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await queue?.close();
    await server?.stop();
  });

  it('shows hostile bodies and error messages escaped on a terminal, forging no line', async () => {
    const t = tube();
    const { logger, text } = capture(true);
    const fails = queue.task(t, { retries: 0 })(async function fails(kw: { note: string }) {
      throw new Error(`rejected ${kw.note}`);
    });
    const worker = new Worker({ tubes: [t], url: server.url, logger, maxKicks: 0 });
    workers.push(worker);
    await worker.start();

    // V8's JSON.parse message quotes the body, so the body's newline reaches the message too.
    // Listening before the put: the worker can settle a job before put() resolves. Each outcome is
    // logged before its event is emitted, so the line is written once the event is.
    // maxKicks 0: each job fails for good at once and is deleted, with its whole body in the error line.
    let settled = new Promise<void>((resolve) => worker.once('job:deleted', () => resolve()));
    await rawPut(server.url, t, `x${FORGED}\u202e`);
    await settled;
    settled = new Promise<void>((resolve) => worker.once('job:deleted', () => resolve()));
    await fails.put({ note: `${FORGED}\u202e\u0085` });
    await settled;

    const output = text().replace(SGR, '');
    assert.doesNotMatch(output, RAW_UNSAFE);
    const lines = output.split('\n').filter(Boolean);
    for (const line of lines) assert.match(line, /^(\[\d\d:\d\d:\d\d\.\d{3}\] [A-Z]+:|\s)/, JSON.stringify(line));
    assert.ok(!lines.some((line) => line.includes('FORGED') && /^\s*FORGED/.test(line)));
    assert.match(output, /\\nFORGED \[12:00:00\.000\] INFO: all is well\\n\\u202e/);
    assert.match(output, /rejected \\nFORGED/);
  });

  it('logs a refused connection as one short JSON line with no stack', async () => {
    const { logger, text } = capture(false);
    const port = await freePort();
    const error = await BeanstalkConnection.connect({ host: '127.0.0.1', port }, { connectTimeoutMs: 2_000 }).then(
      () => assert.fail('expected the connection to be refused'),
      (thrown: unknown) => thrown,
    );
    logger.warn({ err: error, attempt: 1 }, 'reconnect failed');
    const lines = text().split('\n').filter(Boolean);
    assert.equal(lines.length, 1);
    assert.ok((lines[0]?.length ?? 0) < 800, lines[0]);
    const err = (JSON.parse(lines[0] ?? '') as { err: { type: string; code: string; stack?: string } }).err;
    assert.deepEqual([err.type, err.code, err.stack], ['ConnectionError', 'CONNECTION', undefined]);
  });
});
