/**
 * Polling the server's counters. Where beanstalkd is the only source of truth (how many reserves are
 * waiting, how many jobs a worker in another process has deleted), the bench asks it, often and cheaply.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RawClient } from '../test/helpers/raw-client.js';

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  /** Pause between checks; 0 polls back to back (each check is a round trip, not a spin). @defaultValue 5 */
  readonly intervalMs?: number;
  /** Give up after this long. @defaultValue 30000 */
  readonly timeoutMs?: number;
  /** Says what was awaited, for the timeout error. */
  readonly what: string;
  /** Checked before each poll: a reason to stop waiting (a child that exited), thrown as an Error. */
  readonly abort?: () => string | undefined;
}

/** Resolves once `check()` resolves true; rejects on timeout or when `abort()` gives a reason. */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const { intervalMs = 5, timeoutMs = 30_000, what, abort } = options;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reason = abort?.();
    if (reason !== undefined) throw new Error(`while waiting for ${what}: ${reason}`);
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    if (intervalMs > 0) await sleep(intervalMs);
  }
}

/** A counter of `stats-tube`, as a number. */
export async function tubeCounter(client: RawClient, tube: string, counter: string): Promise<number> {
  const stats = await client.statsTube(tube);
  const value = Number(stats[counter]);
  if (!Number.isFinite(value)) throw new Error(`stats-tube ${tube} has no numeric ${counter}: ${JSON.stringify(stats)}`);
  return value;
}

/** Resolves once `count` reserves are waiting on `tube` (every worker slot is blocked on it). */
export function waitForWaiting(client: RawClient, tube: string, count: number, options: Omit<WaitOptions, 'what'> = {}): Promise<void> {
  return waitUntil(async () => (await tubeCounter(client, tube, 'current-waiting')) >= count, {
    ...options,
    what: `${count} reserve(s) waiting on ${tube}`,
  });
}
