// A put into another tube than the last is written right behind its `use`, without waiting for the
// answer; and a `use` the server refuses drops the connection, so the puts written behind it fail as
// outcome unknown instead of resolving with ids of jobs in the wrong tube. A scripted peer on 127.0.0.1
// plays beanstalkd, so the test decides when (and what) the server answers.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { PutOutcomeUnknownError } from '../../src/beanstalk/errors.js';
import { startPeer, type TcpPeer } from '../helpers/tcp-peer.js';

const params = { priority: 1024, delaySeconds: 0, ttrSeconds: 60 };
const STATS_YAML = '---\nmax-job-size: 65535\nversion: 1.12\n';
const STATS_REPLY = `OK ${STATS_YAML.length}\r\n${STATS_YAML}\r\n`;

/**
 * A peer that answers the connect's `stats`, then hands every later byte to `onCommands` (with the
 * socket, to answer when the test wants).
 */
function scriptedPeer(onCommands: (text: string, socket: Socket) => void): Promise<TcpPeer> {
  return startPeer((socket) => {
    let seen = '';
    let statsAnswered = false;
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (!statsAnswered) {
        if (!seen.startsWith('stats\r\n')) return;
        statsAnswered = true;
        seen = seen.slice('stats\r\n'.length);
        socket.write(STATS_REPLY);
      }
      if (seen.length > 0) onCommands(seen, socket);
    });
  });
}

/** `promise`, or a readable failure after `ms` saying what the peer had received by then. */
async function answeredWithin<T>(promise: Promise<T>, ms: number, seen: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms; the peer had received ${JSON.stringify(seen())}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a put into another tube', { timeout: 20_000 }, () => {
  it('is written right behind its use, before the server has answered the use', async () => {
    let received = '';
    let answered = false;
    const peer = await scriptedPeer((text, socket) => {
      received = text;
      // Nothing is answered until the put has arrived: a client that waited for USING would hang here.
      if (!answered && /^use other\r\nput 1024 0 60 2\r\nhi\r\n/.test(text)) {
        answered = true;
        socket.write('USING other\r\nINSERTED 7\r\n');
      }
    });
    const conn = await BeanstalkConnection.connect({ host: '127.0.0.1', port: peer.port }, { connectTimeoutMs: 2_000 });
    try {
      assert.equal(await answeredWithin(conn.putInTube('other', Buffer.from('hi'), params), 5_000, () => received), '7');
      assert.match(received, /^use other\r\nput /);
    } finally {
      conn.destroy();
      await peer.close();
    }
  });

  it('fails as outcome unknown when the server refuses the use, and the connection is dropped', async () => {
    const peer = await scriptedPeer((text, socket) => {
      // beanstalkd answers OUT_OF_MEMORY to a `use` when it cannot make the tube; the put behind it
      // then ran in the previous tube.
      if (/^use other\r\nput [^\r]*\r\nhi\r\n/.test(text)) socket.write('OUT_OF_MEMORY\r\nINSERTED 7\r\n');
    });
    const conn = await BeanstalkConnection.connect({ host: '127.0.0.1', port: peer.port }, { connectTimeoutMs: 2_000 });
    try {
      await assert.rejects(conn.putInTube('other', Buffer.from('hi'), params), (error: unknown) => {
        assert.ok(error instanceof PutOutcomeUnknownError, `got ${String(error)}`);
        assert.match(String((error as Error).message), /refused `use other`/);
        return true;
      });
      assert.equal(conn.isClosed, true);
    } finally {
      conn.destroy();
      await peer.close();
    }
  });
});
