// Reading what schedules put: the scheduled jobs of a tube, with the meta.schedule each carries.
import assert from 'node:assert/strict';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { decodeEnvelope } from '../../src/envelope/envelope.js';

/** One scheduled job: its id and its meta.schedule. */
export interface Ticked {
  readonly id: string;
  readonly schedule: string;
  readonly tick: string;
}

/**
 * Reserves and deletes the jobs of `tube` until `done(seen)` holds or `timeoutMs` passes (polling the
 * server with a bounded wait, never a sleep); returns each job's meta.schedule in the order reserved.
 */
export async function drainTicks(
  url: string,
  tube: string,
  done: (seen: readonly Ticked[]) => boolean,
  timeoutMs = 8_000,
): Promise<Ticked[]> {
  const [host, port] = url.split(':');
  const connection = await BeanstalkConnection.connect({ host: host ?? '127.0.0.1', port: Number(port) }, { stallTimeoutMs: 5_000 });
  const seen: Ticked[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    await connection.watch(tube);
    await connection.ignore('default');
    while (!done(seen) && Date.now() < deadline) {
      const job = await connection.reserve(1);
      if (job === null) continue;
      const decoded = decodeEnvelope(job.body);
      assert.ok(decoded.ok, 'a scheduled job is an envelope');
      const meta = decoded.envelope.meta as { schedule?: { name: string; tick: string } } | undefined;
      assert.ok(meta?.schedule, 'the scheduled job carries meta.schedule');
      seen.push({ id: job.id, schedule: meta.schedule.name, tick: meta.schedule.tick });
      await connection.delete(job.id);
    }
  } finally {
    await connection.quit();
  }
  return seen;
}

/** Reads `count` scheduled jobs of `tube` (fewer if `timeoutMs` passes first). */
export function drainCount(url: string, tube: string, count: number, timeoutMs = 8_000): Promise<Ticked[]> {
  return drainTicks(url, tube, (seen) => seen.length >= count, timeoutMs);
}
