// Raw beanstalkd sessions for tests: several commands on ONE connection, which `bury` needs (it works only
// on the connection that reserved the job; the harness's raw helpers open one connection per command).
import assert from 'node:assert/strict';
import type { BeanstalkdServer } from './beanstalkd.js';
import { RawClient } from './raw-client.js';

/** Each command of a session gets this long for its reply. */
const REPLY_TIMEOUT_MS = 5_000;

/**
 * Sends commands one at a time on one raw connection and returns each reply's first line. Burying needs
 * this: `bury` works only on the connection that reserved the job, and the harness opens one per command.
 */
export async function rawSession(port: number, commands: string[]): Promise<string[]> {
  const client = await RawClient.connect(port, REPLY_TIMEOUT_MS);
  const replies: string[] = [];
  try {
    for (const command of commands) {
      try {
        replies.push((await client.requestWithin(`${command}\r\n`, REPLY_TIMEOUT_MS)).line);
      } catch (error) {
        throw new Error(`raw session: ${(error as Error).message}, after replies ${JSON.stringify(replies)}`);
      }
    }
    return replies;
  } finally {
    client.quit();
  }
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
