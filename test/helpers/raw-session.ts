// Raw beanstalkd sessions for tests: several commands on ONE connection, which `bury` needs (it works only
// on the connection that reserved the job; the harness's raw helpers open one connection per command).
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import type { BeanstalkdServer } from './beanstalkd.js';

/**
 * Sends commands one at a time on one raw connection and returns each reply's first line. Burying needs
 * this: `bury` works only on the connection that reserved the job, and the harness opens one per command.
 */
export function rawSession(port: number, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const replies: string[] = [];
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw session timed out after replies ${JSON.stringify(replies)}`));
    }, 5_000);
    const next = (): void => {
      const command = commands[replies.length];
      if (command === undefined) {
        clearTimeout(timer);
        socket.end();
        resolve(replies);
      } else socket.write(`${command}\r\n`);
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const lineEnd = buffer.indexOf('\r\n');
        if (lineEnd < 0) return;
        const line = buffer.subarray(0, lineEnd).toString('utf8');
        // RESERVED/FOUND/OK carry a body whose size is the last word; wait for all of it.
        const size = /^(?:RESERVED|FOUND|OK) .*?(\d+)$/.exec(line)?.[1];
        const end = lineEnd + 2 + (size === undefined ? 0 : Number(size) + 2);
        if (buffer.length < end) return;
        buffer = buffer.subarray(end);
        replies.push(line);
        next();
      }
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('connect', next);
  });
}

/** Reserves and buries the given ready jobs, and checks the server agrees they are buried. */
export async function bury(server: BeanstalkdServer, ids: string[]): Promise<void> {
  const replies = await rawSession(
    server.port,
    ids.flatMap((id) => [`reserve-job ${id}`, `bury ${id} 1024`]),
  );
  ids.forEach((id, i) => {
    assert.match(replies[2 * i] ?? '', new RegExp(`^RESERVED ${id} `));
    assert.equal(replies[2 * i + 1], 'BURIED');
  });
}
