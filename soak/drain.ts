/**
 * The end of the soak: empties a tube with a raw client and returns the kwargs ids of its jobs. Buried
 * and delayed jobs are kicked first (kick moves buried jobs before delayed ones, so it is repeated until
 * it kicks nothing), then every ready job is reserved, read and deleted. Runs after the workers have
 * stopped, so nothing else takes these jobs.
 */
import { RawClient } from '../test/helpers/raw-client.js';

/** What was found in one tube. */
export interface Drained {
  /** The kwargs id of each job (duplicates kept). */
  readonly ids: number[];
  /** Jobs whose body had no numeric `kwargs.id`. */
  readonly unreadable: number;
}

/** The kwargs id in an envelope body, or undefined. */
export function kwargsId(body: Buffer | undefined): number | undefined {
  try {
    const id = (JSON.parse((body ?? Buffer.alloc(0)).toString('utf8')) as { kwargs?: { id?: unknown } }).kwargs?.id;
    return typeof id === 'number' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Kicks, reserves and deletes every job of `tube`. */
export async function drainTube(port: number, tube: string): Promise<Drained> {
  const client = await RawClient.connect(port);
  try {
    await client.expect(`use ${tube}\r\n`, 'USING');
    for (;;) {
      const kicked = await client.expect('kick 100000\r\n', 'KICKED');
      if (kicked.line === 'KICKED 0') break;
    }
    await client.expect(`watch ${tube}\r\n`, 'WATCHING');
    if (tube !== 'default') await client.expect('ignore default\r\n', 'WATCHING');
    const ids: number[] = [];
    let unreadable = 0;
    for (;;) {
      const reply = await client.request('reserve-with-timeout 0\r\n');
      if (reply.line === 'TIMED_OUT') break;
      if (!reply.line.startsWith('RESERVED ')) throw new Error(`drain ${tube}: reserve: ${reply.line}`);
      const jobId = reply.line.split(' ')[1];
      const id = kwargsId(reply.body);
      if (id === undefined) unreadable += 1;
      else ids.push(id);
      await client.expect(`delete ${jobId}\r\n`, 'DELETED');
    }
    return { ids, unreadable };
  } finally {
    client.close();
  }
}
