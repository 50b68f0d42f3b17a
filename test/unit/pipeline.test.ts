/**
 * The command pipeline over a fake socket: what it writes and when, how replies settle commands in
 * order, the window of commands in flight, and what a closed or broken stream does to every promise
 * (rejected, never left hanging; the never-written ones marked so, because a producer retries only
 * those). The real socket is covered by test/integration/connection.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ConnectionError, isNotSent, NotFoundError, ProtocolError, PutOutcomeUnknownError } from '../../src/beanstalk/errors.js';
import { MAX_IN_FLIGHT, Pipeline, type PipelineOptions, type PipelineSocket } from '../../src/beanstalk/pipeline.js';
import { EXPECT, idOf, jobOf, nothing } from '../../src/beanstalk/replies.js';

const ADDRESS = { host: '127.0.0.1', port: 11300 };

/** A socket that records its writes; destroy() closes it the way a real one does, a little later. */
class FakeSocket implements PipelineSocket {
  destroyed = false;
  readonly writes: string[] = [];
  refs = 0;
  unrefs = 0;
  #pipe: Pipeline | undefined;

  attachTo(pipe: Pipeline): void {
    this.#pipe = pipe;
    pipe.attach(this);
  }
  write(data: string | Buffer): boolean {
    this.writes.push(typeof data === 'string' ? data : data.toString('latin1'));
    return true;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    setImmediate(() => this.#pipe?.handleClose(new ConnectionError('127.0.0.1:11300', 'the connection to beanstalkd closed')));
  }
  ref(): void {
    this.refs += 1;
  }
  unref(): void {
    this.unrefs += 1;
  }
}

function setup(options: Partial<PipelineOptions> = {}): { pipe: Pipeline; socket: FakeSocket } {
  const pipe = new Pipeline(ADDRESS, { commandTimeoutMs: undefined, stallTimeoutMs: undefined, unrefWhenIdle: false, ...options });
  const socket = new FakeSocket();
  socket.attachTo(pipe);
  return { pipe, socket };
}

/** Lets the pipeline's process.nextTick flush run. */
const flushed = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the pipeline', () => {
  it('writes the commands of one synchronous step in one write, in order', async () => {
    const { pipe, socket } = setup();
    const deleted = pipe.send('delete', '1', EXPECT.delete, 'delete 1\r\n', nothing);
    const reserved = pipe.send('reserve-with-timeout', undefined, EXPECT.reserve, 'reserve-with-timeout 0\r\n', jobOf);
    const put = pipe.send('put', undefined, EXPECT.put, Buffer.from('put 0 0 60 2\r\nhi\r\n'), idOf);
    assert.deepEqual(socket.writes, [], 'nothing is written before the step ends');
    await flushed();
    assert.deepEqual(socket.writes, ['delete 1\r\nreserve-with-timeout 0\r\nput 0 0 60 2\r\nhi\r\n']);
    pipe.onData(Buffer.from('DELETED\r\nRESERVED 5 3\r\nabc\r\nINSER'));
    pipe.onData(Buffer.from('TED 6\r\n'));
    assert.equal(await deleted, undefined);
    assert.deepEqual(await reserved, { id: '5', body: Buffer.from('abc') });
    assert.equal(await put, '6');
  });

  it('settles the null word as null and any other word as its typed error', async () => {
    const { pipe } = setup();
    const timedOut = pipe.send('reserve-with-timeout', undefined, EXPECT.reserve, 'reserve-with-timeout 0\r\n', jobOf);
    const missing = pipe.send('delete', '9', EXPECT.delete, 'delete 9\r\n', nothing);
    await flushed();
    pipe.onData(Buffer.from('TIMED_OUT\r\nNOT_FOUND\r\n'));
    assert.equal(await timedOut, null);
    await assert.rejects(missing, (error: unknown) => error instanceof NotFoundError && /delete 9/.test(error.message));
    assert.equal(pipe.isClosed, false, 'NOT_FOUND leaves the stream in step');
  });

  it('drops the connection on a reply that means the stream is out of step', async () => {
    const { pipe, socket } = setup();
    const put = pipe.send('put', undefined, EXPECT.put, 'put 0 0 1 0\r\n\r\n', idOf);
    const after = pipe.send('delete', '1', EXPECT.delete, 'delete 1\r\n', nothing);
    await flushed();
    pipe.onData(Buffer.from('BAD_FORMAT\r\nDELETED\r\n'));
    await assert.rejects(put, ProtocolError);
    // The DELETED that follows is not believed: the command is lost with the connection.
    await assert.rejects(after, (error: unknown) => error instanceof ConnectionError && !isNotSent(error));
    assert.ok(socket.destroyed);
    assert.equal(pipe.isClosed, true);
  });

  it('drops the connection on bytes that are not replies, or a reply nobody asked for', async () => {
    const bad = setup();
    const reserve = bad.pipe.send('reserve-with-timeout', undefined, EXPECT.reserve, 'reserve-with-timeout 1\r\n', jobOf);
    await flushed();
    bad.pipe.onData(Buffer.from('RESERVED 1 x\r\n'));
    await assert.rejects(reserve, ConnectionError);
    assert.ok(bad.socket.destroyed);

    const unasked = setup();
    unasked.pipe.onData(Buffer.from('DELETED\r\n'));
    assert.ok(unasked.socket.destroyed);
    await unasked.pipe.whenClosed;
  });

  it('keeps at most MAX_IN_FLIGHT commands written, and writes the next as replies come', async () => {
    const { pipe, socket } = setup();
    const all: Promise<string>[] = [];
    for (let i = 0; i <= MAX_IN_FLIGHT; i++) all.push(pipe.send('put', undefined, EXPECT.put, `p${i}\n`, idOf));
    await flushed();
    const written = (): number => socket.writes.join('').split('\n').length - 1;
    assert.equal(written(), MAX_IN_FLIGHT);
    pipe.onData(Buffer.from('INSERTED 1\r\n'));
    await flushed();
    assert.equal(written(), MAX_IN_FLIGHT + 1);
    assert.ok(socket.writes.at(-1)?.endsWith(`p${MAX_IN_FLIGHT}\n`), 'the one that waited goes out last');
    pipe.onData(Buffer.from('INSERTED 2\r\n'.repeat(MAX_IN_FLIGHT)));
    assert.equal((await Promise.all(all)).length, MAX_IN_FLIGHT + 1);
  });

  it('on close, marks the commands never written as unsent, and a written put as of unknown outcome', async () => {
    const { pipe } = setup();
    const writtenPut = pipe.send('put', undefined, EXPECT.put, 'put 0 0 1 0\r\n\r\n', idOf);
    const writtenDelete = pipe.send('delete', '1', EXPECT.delete, 'delete 1\r\n', nothing);
    await flushed();
    const unsentPut = pipe.send('put', undefined, EXPECT.put, 'put 0 0 1 0\r\n\r\n', idOf);
    pipe.handleClose(new ConnectionError('127.0.0.1:11300', 'closed'));
    await assert.rejects(writtenPut, PutOutcomeUnknownError);
    await assert.rejects(writtenDelete, (error: unknown) => error instanceof ConnectionError && !isNotSent(error));
    await assert.rejects(unsentPut, (error: unknown) => isNotSent(error) && !(error instanceof PutOutcomeUnknownError));
    // Once closed, a command is refused at once, as never sent.
    await assert.rejects(pipe.send('touch', '1', EXPECT.touch, 'touch 1\r\n', nothing), (error: unknown) => isNotSent(error));
    await pipe.whenClosed;
  });

  it('refuses commands before it has a socket, as never sent', async () => {
    const pipe = new Pipeline(ADDRESS, { commandTimeoutMs: undefined, stallTimeoutMs: undefined, unrefWhenIdle: false });
    await assert.rejects(pipe.send('stats', undefined, EXPECT.yaml, 'stats\r\n', nothing), (error: unknown) => isNotSent(error));
  });

  it('drops the connection when a command gets no reply within commandTimeoutMs', async () => {
    const { pipe, socket } = setup({ commandTimeoutMs: 20 });
    const stats = pipe.send('stats', undefined, EXPECT.yaml, 'stats\r\n', nothing);
    await assert.rejects(
      stats,
      (error: unknown) => error instanceof ConnectionError && /did not answer stats within 20 ms/.test(error.message),
    );
    assert.ok(socket.destroyed);
  });

  it('drops the connection when the server is silent for stallTimeoutMs while commands wait', async () => {
    const { pipe, socket } = setup({ stallTimeoutMs: 20 });
    // The watchdog's timer is unref'd (a real socket keeps the process alive); the fake socket does not.
    const keepAlive = setInterval(() => undefined, 1_000);
    try {
      const put = pipe.send('put', undefined, EXPECT.put, 'put 0 0 1 0\r\n\r\n', idOf);
      await assert.rejects(
        put,
        (error: unknown) => error instanceof PutOutcomeUnknownError && /sent nothing for 20 ms/.test(String(error.cause)),
      );
      assert.ok(socket.destroyed);
    } finally {
      clearInterval(keepAlive);
    }
  });

  it('with unrefWhenIdle, holds the process only while a reply is awaited', async () => {
    const { pipe, socket } = setup({ unrefWhenIdle: true });
    const touched = pipe.send('touch', '1', EXPECT.touch, 'touch 1\r\n', nothing);
    assert.equal(socket.refs, 1);
    await flushed();
    pipe.onData(Buffer.from('TOUCHED\r\n'));
    await touched;
    assert.equal(socket.unrefs, 1);
  });
});
